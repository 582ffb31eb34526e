//! The three databases' own clients behind one small interface: connect, read a table's
//! columns, run DDL, and write a batch of statements in one transaction. Values are always
//! bound as parameters in each driver's types.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, BytesMut};
use chrono::{Datelike, FixedOffset, Timelike};
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type as PgType};

use crate::data::{Schema, Value};

use super::config::{ConnectionUrl, Dialect};
use super::dialect::{date_of, decimal_text, local_timestamp, time_of};

/// A database error and whether retrying may help (a lost connection, a deadlock).
#[derive(Clone, Debug)]
pub struct DbError {
    pub message: String,
    pub transient: bool,
}

impl DbError {
    fn fatal(message: impl Into<String>) -> DbError {
        DbError {
            message: message.into(),
            transient: false,
        }
    }
}

/// One statement of a batch with its parameters, and the record it writes (for errors).
#[derive(Clone, Debug)]
pub struct Op {
    pub sql: Arc<String>,
    pub params: Vec<(Arc<Schema>, Value)>,
    pub location: String,
}

/// An open connection.
pub enum Db {
    Postgres(tokio_postgres::Client),
    MySql(mysql_async::Conn),
    Sqlite(Arc<std::sync::Mutex<rusqlite::Connection>>),
}

// ---------------------------------------------------------------------------------------
// Error classification.

fn pg_error(e: tokio_postgres::Error) -> DbError {
    let transient = e.is_closed()
        || std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>())
        || e.code().is_some_and(|c| {
            let c = c.code();
            // Connection exceptions, insufficient resources, operator intervention
            // (shutdown), serialization failures and deadlocks.
            c.starts_with("08")
                || c.starts_with("53")
                || c.starts_with("57P")
                || c == "40001"
                || c == "40P01"
        });
    let message = match e.as_db_error() {
        Some(db) => format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        ),
        None => match std::error::Error::source(&e) {
            Some(s) => format!("{e}: {s}"),
            None => e.to_string(),
        },
    };
    DbError { message, transient }
}

fn mysql_error(e: mysql_async::Error) -> DbError {
    let transient = match &e {
        mysql_async::Error::Io(_) | mysql_async::Error::Driver(_) => true,
        // Lock wait timeout, deadlock, too many connections, shutdown in progress, server
        // gone away / lost connection.
        mysql_async::Error::Server(s) => matches!(s.code, 1205 | 1213 | 1040 | 1053 | 2006 | 2013),
        mysql_async::Error::Other(_) | mysql_async::Error::Url(_) => false,
    };
    DbError {
        message: e.to_string(),
        transient,
    }
}

fn sqlite_error(e: rusqlite::Error) -> DbError {
    let transient = matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    );
    DbError {
        message: e.to_string(),
        transient,
    }
}

fn join_error(e: tokio::task::JoinError) -> DbError {
    DbError::fatal(format!("SQLite worker thread failed: {e}"))
}

// ---------------------------------------------------------------------------------------
// Connecting.

impl Db {
    /// One connection attempt, bounded by `timeout`; any failure is transient (the
    /// database may come back).
    pub async fn connect(url: &ConnectionUrl, timeout: Duration) -> Result<Db, DbError> {
        let timed_out = || DbError {
            message: format!(
                "connecting to {}:{} timed out after {} ms",
                url.host,
                url.port,
                timeout.as_millis()
            ),
            transient: true,
        };
        let transient = |mut e: DbError| {
            e.transient = true;
            e
        };
        match url.dialect {
            Dialect::Postgres => {
                let mut config = tokio_postgres::Config::new();
                config
                    .host(&url.host)
                    .port(url.port)
                    .connect_timeout(timeout);
                // libpq's default user is the OS user.
                let user = url
                    .user
                    .clone()
                    .or_else(|| std::env::var("USER").ok())
                    .unwrap_or_else(|| "postgres".into());
                config.user(&user);
                if let Some(db) = &url.database {
                    config.dbname(db);
                }
                if let Some(p) = &url.password {
                    config.password(p);
                }
                let (client, connection) =
                    tokio::time::timeout(timeout, config.connect(tokio_postgres::NoTls))
                        .await
                        .map_err(|_| timed_out())?
                        .map_err(|e| transient(pg_error(e)))?;
                // The connection object runs the protocol; it ends when the client drops.
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!("JDBC sink: PostgreSQL connection ended: {e}");
                    }
                });
                Ok(Db::Postgres(client))
            }
            Dialect::MySql => {
                let opts = mysql_async::OptsBuilder::default()
                    .ip_or_hostname(url.host.clone())
                    .tcp_port(url.port)
                    .user(url.user.clone())
                    .pass(url.password.clone())
                    .db_name(url.database.clone())
                    .prefer_socket(false);
                let conn = tokio::time::timeout(timeout, mysql_async::Conn::new(opts))
                    .await
                    .map_err(|_| timed_out())?
                    .map_err(|e| transient(mysql_error(e)))?;
                Ok(Db::MySql(conn))
            }
            Dialect::Sqlite => {
                let path = url.path.clone();
                let conn = tokio::task::spawn_blocking(move || {
                    let conn = rusqlite::Connection::open(&path)?;
                    conn.busy_timeout(Duration::from_secs(5))?;
                    Ok::<_, rusqlite::Error>(conn)
                })
                .await
                .map_err(join_error)?
                .map_err(|e| transient(sqlite_error(e)))?;
                Ok(Db::Sqlite(Arc::new(std::sync::Mutex::new(conn))))
            }
        }
    }

    /// Closes politely (MySQL says goodbye; the others just drop).
    pub async fn close(self) {
        if let Db::MySql(conn) = self {
            let _ = tokio::time::timeout(Duration::from_secs(2), conn.disconnect()).await;
        }
    }

    /// The table's column names, `None` when the table does not exist. `fold_lower`: the
    /// name is unquoted, so PostgreSQL stores it in lower case.
    pub async fn columns(
        &mut self,
        table: &str,
        fold_lower: bool,
    ) -> Result<Option<Vec<String>>, DbError> {
        let (schema, name) = match table.rsplit_once('.') {
            Some((s, n)) => (Some(s.to_string()), n.to_string()),
            None => (None, table.to_string()),
        };
        let names: Vec<String> = match self {
            Db::Postgres(client) => {
                let (schema, name) = if fold_lower {
                    (schema.map(|s| s.to_lowercase()), name.to_lowercase())
                } else {
                    (schema, name)
                };
                client
                    .query(
                        "SELECT column_name::text FROM information_schema.columns \
                         WHERE table_schema = COALESCE($1::text, current_schema()) AND table_name = $2::text \
                         ORDER BY ordinal_position",
                        &[&schema, &name],
                    )
                    .await
                    .map_err(pg_error)?
                    .iter()
                    .map(|r| r.get::<_, String>(0))
                    .collect()
            }
            Db::MySql(conn) => {
                use mysql_async::prelude::Queryable;
                conn.exec(
                    "SELECT COLUMN_NAME FROM information_schema.COLUMNS \
                     WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ? \
                     ORDER BY ORDINAL_POSITION",
                    (schema, name),
                )
                .await
                .map_err(mysql_error)?
            }
            Db::Sqlite(conn) => {
                let conn = conn.clone();
                let table = table.to_string();
                tokio::task::spawn_blocking(move || {
                    let conn = conn
                        .lock()
                        .map_err(|_| DbError::fatal("SQLite connection poisoned"))?;
                    let mut stmt = conn
                        .prepare("SELECT name FROM pragma_table_info(?1)")
                        .map_err(sqlite_error)?;
                    let rows = stmt
                        .query_map([&table], |r| r.get::<_, String>(0))
                        .map_err(sqlite_error)?;
                    rows.collect::<Result<Vec<_>, _>>().map_err(sqlite_error)
                })
                .await
                .map_err(join_error)??
            }
        };
        Ok((!names.is_empty()).then_some(names))
    }

    /// A DDL statement (outside the batch's transaction: MySQL commits DDL implicitly).
    pub async fn execute_ddl(&mut self, sql: &str) -> Result<(), DbError> {
        match self {
            Db::Postgres(client) => client.batch_execute(sql).await.map_err(pg_error),
            Db::MySql(conn) => {
                use mysql_async::prelude::Queryable;
                conn.query_drop(sql).await.map_err(mysql_error)
            }
            Db::Sqlite(conn) => {
                let conn = conn.clone();
                let sql = sql.to_string();
                tokio::task::spawn_blocking(move || {
                    let conn = conn
                        .lock()
                        .map_err(|_| DbError::fatal("SQLite connection poisoned"))?;
                    conn.execute_batch(&sql).map_err(sqlite_error)
                })
                .await
                .map_err(join_error)?
            }
        }
    }

    /// Runs the statements in one transaction: all committed, or none. On failure, the
    /// index of the statement that failed (if one did).
    pub async fn write(
        &mut self,
        ops: Vec<Op>,
        zone: FixedOffset,
    ) -> Result<(), (DbError, Option<usize>)> {
        match self {
            Db::Postgres(client) => {
                let tx = client
                    .transaction()
                    .await
                    .map_err(|e| (pg_error(e), None))?;
                let mut prepared: HashMap<Arc<String>, tokio_postgres::Statement> = HashMap::new();
                for (i, op) in ops.iter().enumerate() {
                    let stmt = match prepared.get(&op.sql) {
                        Some(s) => s.clone(),
                        None => {
                            let s = tx
                                .prepare(&op.sql)
                                .await
                                .map_err(|e| (pg_error(e), Some(i)))?;
                            prepared.insert(op.sql.clone(), s.clone());
                            s
                        }
                    };
                    let params: Vec<PgParam> = op
                        .params
                        .iter()
                        .map(|(schema, value)| PgParam {
                            schema,
                            value,
                            zone,
                        })
                        .collect();
                    let refs: Vec<&(dyn ToSql + Sync)> =
                        params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
                    tx.execute(&stmt, &refs)
                        .await
                        .map_err(|e| (pg_error(e), Some(i)))?;
                }
                tx.commit().await.map_err(|e| (pg_error(e), None))
            }
            Db::MySql(conn) => {
                use mysql_async::prelude::Queryable;
                let mut tx = conn
                    .start_transaction(mysql_async::TxOpts::default())
                    .await
                    .map_err(|e| (mysql_error(e), None))?;
                for (i, op) in ops.iter().enumerate() {
                    let values = op
                        .params
                        .iter()
                        .map(|(schema, value)| mysql_value(schema, value, zone))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|m| (DbError::fatal(m), Some(i)))?;
                    tx.exec_drop(op.sql.as_str(), mysql_async::Params::Positional(values))
                        .await
                        .map_err(|e| (mysql_error(e), Some(i)))?;
                }
                tx.commit().await.map_err(|e| (mysql_error(e), None))
            }
            Db::Sqlite(conn) => {
                let conn = conn.clone();
                tokio::task::spawn_blocking(move || {
                    let mut conn = conn
                        .lock()
                        .map_err(|_| (DbError::fatal("SQLite connection poisoned"), None))?;
                    let tx = conn.transaction().map_err(|e| (sqlite_error(e), None))?;
                    for (i, op) in ops.iter().enumerate() {
                        let values = op
                            .params
                            .iter()
                            .map(|(schema, value)| sqlite_value(schema, value, zone))
                            .collect::<Result<Vec<_>, _>>()
                            .map_err(|m| (DbError::fatal(m), Some(i)))?;
                        let mut stmt = tx
                            .prepare_cached(&op.sql)
                            .map_err(|e| (sqlite_error(e), Some(i)))?;
                        stmt.execute(rusqlite::params_from_iter(values))
                            .map_err(|e| (sqlite_error(e), Some(i)))?;
                    }
                    tx.commit().map_err(|e| (sqlite_error(e), None))
                })
                .await
                .map_err(|e| (join_error(e), None))?
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Values in each driver's types.

fn decimal_scale(schema: &Schema) -> Result<i32, String> {
    schema.decimal_scale().map_err(|e| e.0)
}

fn mysql_value(
    schema: &Schema,
    value: &Value,
    zone: FixedOffset,
) -> Result<mysql_async::Value, String> {
    use mysql_async::Value as M;
    Ok(match value {
        Value::Null => M::NULL,
        Value::Int8(v) => M::Int(i64::from(*v)),
        Value::Int16(v) => M::Int(i64::from(*v)),
        Value::Int32(v) => M::Int(i64::from(*v)),
        Value::Int64(v) => M::Int(*v),
        Value::Float32(v) => M::Float(*v),
        Value::Float64(v) => M::Double(*v),
        Value::Boolean(b) => M::Int(i64::from(*b)),
        Value::String(s) => M::Bytes(s.as_bytes().to_vec()),
        Value::Bytes(b) => M::Bytes(b.clone()),
        // DECIMAL as text: the server parses it exactly.
        Value::Decimal(u) => M::Bytes(decimal_text(*u, decimal_scale(schema)?).into_bytes()),
        Value::Date(d) => {
            let d = date_of(*d)?;
            M::Date(
                year(d.year_ce())?,
                d.month0() as u8 + 1,
                d.day0() as u8 + 1,
                0,
                0,
                0,
                0,
            )
        }
        Value::Time(ms) => {
            let t = time_of(*ms)?;
            M::Time(
                false,
                0,
                t.hour() as u8,
                t.minute() as u8,
                t.second() as u8,
                t.nanosecond() / 1000,
            )
        }
        Value::Timestamp(ms) => {
            let t = local_timestamp(*ms, zone)?;
            let d = t.date();
            M::Date(
                year(d.year_ce())?,
                d.month0() as u8 + 1,
                d.day0() as u8 + 1,
                t.hour() as u8,
                t.minute() as u8,
                t.second() as u8,
                t.nanosecond() / 1000,
            )
        }
        other => return Err(unsupported(other)),
    })
}

fn year((ce, y): (bool, u32)) -> Result<u16, String> {
    u16::try_from(y)
        .ok()
        .filter(|_| ce)
        .ok_or_else(|| format!("year {y} is outside what MySQL can store"))
}

fn unsupported(value: &Value) -> String {
    format!(
        "a {} value has no column type (flatten arrays, maps and structs first)",
        value.kind()
    )
}

fn sqlite_value(
    schema: &Schema,
    value: &Value,
    zone: FixedOffset,
) -> Result<rusqlite::types::Value, String> {
    use rusqlite::types::Value as S;
    Ok(match value {
        Value::Null => S::Null,
        Value::Int8(v) => S::Integer(i64::from(*v)),
        Value::Int16(v) => S::Integer(i64::from(*v)),
        Value::Int32(v) => S::Integer(i64::from(*v)),
        Value::Int64(v) => S::Integer(*v),
        Value::Float32(v) => S::Real(f64::from(*v)),
        Value::Float64(v) => S::Real(*v),
        Value::Boolean(b) => S::Integer(i64::from(*b)),
        Value::String(s) => S::Text(s.clone()),
        Value::Bytes(b) => S::Blob(b.clone()),
        Value::Decimal(u) => S::Text(decimal_text(*u, decimal_scale(schema)?)),
        // SQLite has no date types: ISO 8601 text sorts and its date functions read it.
        Value::Date(d) => S::Text(date_of(*d)?.format("%Y-%m-%d").to_string()),
        Value::Time(ms) => S::Text(time_of(*ms)?.format("%H:%M:%S%.3f").to_string()),
        Value::Timestamp(ms) => S::Text(
            local_timestamp(*ms, zone)?
                .format("%Y-%m-%d %H:%M:%S%.3f")
                .to_string(),
        ),
        other => return Err(unsupported(other)),
    })
}

/// A parameter for PostgreSQL, encoded for the type the server inferred for it (the
/// column's), so an INT value fits a BIGINT column and a mismatch names both types.
#[derive(Debug)]
struct PgParam<'a> {
    schema: &'a Schema,
    value: &'a Value,
    zone: FixedOffset,
}

type BoxError = Box<dyn std::error::Error + Sync + Send>;

/// Microseconds from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
const PG_EPOCH_DAYS: i32 = 10_957;

impl PgParam<'_> {
    fn mismatch(&self, ty: &PgType) -> BoxError {
        format!(
            "a {} value cannot be stored in a column of type {}",
            self.value.kind(),
            ty
        )
        .into()
    }
}

fn pg_int(v: i64, ty: &PgType, out: &mut BytesMut) -> Result<Option<IsNull>, BoxError> {
    Ok(Some(match *ty {
        PgType::INT2 => i16::try_from(v)?.to_sql(ty, out)?,
        PgType::INT4 => i32::try_from(v)?.to_sql(ty, out)?,
        PgType::INT8 => v.to_sql(ty, out)?,
        PgType::FLOAT4 => (v as f32).to_sql(ty, out)?,
        PgType::FLOAT8 => (v as f64).to_sql(ty, out)?,
        PgType::NUMERIC => {
            pg_numeric(i128::from(v), 0, out)?;
            IsNull::No
        }
        _ => return Ok(None),
    }))
}

/// PostgreSQL's binary NUMERIC: base-10000 digits with a weight, sign and display scale.
fn pg_numeric(unscaled: i128, scale: i32, out: &mut BytesMut) -> Result<(), BoxError> {
    // PostgreSQL's own limit on a numeric's display scale (and no huge zero padding here).
    if !(-1000..=16383).contains(&scale) {
        return Err(format!("decimal scale {scale} is beyond what PostgreSQL stores").into());
    }
    let (unscaled, scale) = if scale < 0 {
        let factor = 10i128
            .checked_pow(scale.unsigned_abs())
            .ok_or("decimal scale out of range")?;
        (
            unscaled.checked_mul(factor).ok_or("decimal out of range")?,
            0usize,
        )
    } else {
        (unscaled, scale as usize)
    };
    let mut digits = unscaled.unsigned_abs().to_string();
    if digits.len() <= scale {
        digits = "0".repeat(scale + 1 - digits.len()) + &digits;
    }
    let (int, frac) = digits.split_at(digits.len() - scale);
    let int = "0".repeat((4 - int.len() % 4) % 4) + int;
    let frac = frac.to_string() + &"0".repeat((4 - frac.len() % 4) % 4);
    let group = |s: &str| {
        s.as_bytes()
            .chunks(4)
            .map(|c| {
                std::str::from_utf8(c)
                    .unwrap_or("0")
                    .parse::<i16>()
                    .unwrap_or(0)
            })
            .collect::<Vec<_>>()
    };
    let int_groups = group(&int);
    let mut weight = int_groups.len() as i16 - 1;
    let mut groups: Vec<i16> = int_groups.into_iter().chain(group(&frac)).collect();
    while groups.first() == Some(&0) {
        groups.remove(0);
        weight -= 1;
    }
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    out.put_i16(groups.len() as i16);
    out.put_i16(weight);
    out.put_u16(if unscaled < 0 { 0x4000 } else { 0 });
    out.put_u16(u16::try_from(scale)?);
    for g in groups {
        out.put_i16(g);
    }
    Ok(())
}

fn pg_text(text: &str, ty: &PgType, out: &mut BytesMut) -> Result<Option<IsNull>, BoxError> {
    Ok(Some(match *ty {
        PgType::TEXT | PgType::VARCHAR | PgType::BPCHAR | PgType::NAME | PgType::UNKNOWN => {
            text.to_sql(ty, out)?
        }
        PgType::JSON => {
            out.put_slice(text.as_bytes());
            IsNull::No
        }
        PgType::JSONB => {
            out.put_u8(1);
            out.put_slice(text.as_bytes());
            IsNull::No
        }
        _ => return Ok(None),
    }))
}

impl ToSql for PgParam<'_> {
    fn to_sql(&self, ty: &PgType, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        let encoded = match self.value {
            Value::Null => Some(IsNull::Yes),
            Value::Int8(v) => pg_int(i64::from(*v), ty, out)?,
            Value::Int16(v) => pg_int(i64::from(*v), ty, out)?,
            Value::Int32(v) => pg_int(i64::from(*v), ty, out)?,
            Value::Int64(v) => pg_int(*v, ty, out)?,
            Value::Float32(v) => match *ty {
                PgType::FLOAT4 => Some(v.to_sql(ty, out)?),
                PgType::FLOAT8 => Some(f64::from(*v).to_sql(ty, out)?),
                _ => None,
            },
            Value::Float64(v) => match *ty {
                PgType::FLOAT8 => Some(v.to_sql(ty, out)?),
                PgType::FLOAT4 => Some((*v as f32).to_sql(ty, out)?),
                _ => None,
            },
            Value::Boolean(b) => match *ty {
                PgType::BOOL => Some(b.to_sql(ty, out)?),
                _ => None,
            },
            Value::String(s) => match *ty {
                PgType::UUID => {
                    out.put_slice(uuid::Uuid::parse_str(s)?.as_bytes());
                    Some(IsNull::No)
                }
                _ => pg_text(s, ty, out)?,
            },
            Value::Bytes(b) => match *ty {
                PgType::BYTEA => Some(b.as_slice().to_sql(ty, out)?),
                _ => None,
            },
            Value::Decimal(u) => {
                let scale = self.schema.decimal_scale().map_err(|e| e.0.clone())?;
                match *ty {
                    PgType::NUMERIC => {
                        pg_numeric(*u, scale, out)?;
                        Some(IsNull::No)
                    }
                    PgType::FLOAT8 => {
                        Some(decimal_text(*u, scale).parse::<f64>()?.to_sql(ty, out)?)
                    }
                    _ => pg_text(&decimal_text(*u, scale), ty, out)?,
                }
            }
            Value::Date(d) => match *ty {
                PgType::DATE => {
                    out.put_i32(d.checked_sub(PG_EPOCH_DAYS).ok_or("date out of range")?);
                    Some(IsNull::No)
                }
                _ => pg_text(&date_of(*d)?.format("%Y-%m-%d").to_string(), ty, out)?,
            },
            Value::Time(ms) => match *ty {
                PgType::TIME => {
                    time_of(*ms)?;
                    out.put_i64(i64::from(*ms) * 1000);
                    Some(IsNull::No)
                }
                _ => pg_text(&time_of(*ms)?.format("%H:%M:%S%.3f").to_string(), ty, out)?,
            },
            Value::Timestamp(ms) => {
                let micros = |millis: i64| {
                    millis
                        .checked_mul(1000)
                        .and_then(|m| m.checked_sub(PG_EPOCH_MICROS))
                        .ok_or("timestamp out of range")
                };
                match *ty {
                    // A column without a zone holds the wall-clock time in db.timezone.
                    PgType::TIMESTAMP => {
                        let local = ms
                            .checked_add(i64::from(self.zone.local_minus_utc()) * 1000)
                            .ok_or("timestamp out of range")?;
                        out.put_i64(micros(local)?);
                        Some(IsNull::No)
                    }
                    PgType::TIMESTAMPTZ => {
                        out.put_i64(micros(*ms)?);
                        Some(IsNull::No)
                    }
                    _ => pg_text(
                        &local_timestamp(*ms, self.zone)?
                            .format("%Y-%m-%d %H:%M:%S%.3f")
                            .to_string(),
                        ty,
                        out,
                    )?,
                }
            }
            Value::Array(_) | Value::Map(_) | Value::Struct(_) => {
                return Err(unsupported(self.value).into())
            }
        };
        encoded.ok_or_else(|| self.mismatch(ty))
    }

    fn accepts(_ty: &PgType) -> bool {
        // Checked per value in to_sql, which names both types on a mismatch.
        true
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(unscaled: i128, scale: i32) -> Vec<i16> {
        let mut out = BytesMut::new();
        pg_numeric(unscaled, scale, &mut out).unwrap();
        out.chunks(2)
            .map(|c| i16::from_be_bytes([c[0], c[1]]))
            .collect()
    }

    #[test]
    fn numerics_use_postgres_base_10000_digits() {
        // ndigits, weight, sign, dscale, digits...
        assert_eq!(numeric(12345, 2), vec![2, 0, 0, 2, 123, 4500]);
        assert_eq!(numeric(5, 3), vec![1, -1, 0, 3, 50]);
        assert_eq!(numeric(-100_000_000, 0), vec![1, 2, 0x4000, 0, 1]);
        assert_eq!(numeric(0, 2), vec![0, 0, 0, 2]);
        assert_eq!(numeric(7, -2), vec![1, 0, 0, 0, 700]);
    }
}
