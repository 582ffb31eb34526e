//! What the connector reads from PostgreSQL's catalog and how it talks SQL: tables and
//! their columns, identifier and literal quoting, error classification.

use tokio_postgres::{Client, SimpleQueryMessage};

use crate::connector::ConnectError;

use super::types::Column;

/// `"ident"` with embedded quotes doubled.
pub fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// `'literal'` (the session runs with `standard_conforming_strings=on`, so backslashes
/// are literal).
pub fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Connection and resource errors, and a slot in use by another process, are transient;
/// other server errors are not.
pub fn pg_error(context: &str, e: &tokio_postgres::Error) -> ConnectError {
    let message = match e.as_db_error() {
        Some(db) => format!(
            "{context}: {} (SQLSTATE {})",
            db.message(),
            db.code().code()
        ),
        None => format!("{context}: {e}"),
    };
    let retriable = match e.code() {
        None => true,
        Some(code) => {
            let c = code.code();
            c.starts_with("08")
                || c.starts_with("53")
                || c.starts_with("57P")
                || c == "55006"
                || c == "40001"
        }
    };
    if retriable {
        ConnectError::Retriable(message)
    } else {
        ConnectError::Fatal(message)
    }
}

/// Rows of a simple query, every value as text (`None` for SQL null).
pub async fn rows(
    client: &Client,
    sql: &str,
) -> Result<Vec<Vec<Option<String>>>, tokio_postgres::Error> {
    let mut out = Vec::new();
    for m in client.simple_query(sql).await? {
        if let SimpleQueryMessage::Row(r) = m {
            out.push((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect());
        }
    }
    Ok(out)
}

/// The first value of the first row.
pub async fn scalar(client: &Client, sql: &str) -> Result<Option<String>, tokio_postgres::Error> {
    Ok(rows(client, sql)
        .await?
        .into_iter()
        .next()
        .and_then(|r| r.into_iter().next().flatten()))
}

/// A table: (oid, schema, name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableId {
    pub oid: u32,
    pub schema: String,
    pub name: String,
}

impl TableId {
    pub fn qualified(&self) -> String {
        format!("{}.{}", self.schema, self.name)
    }
    pub fn sql(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.name))
    }
}

/// Every ordinary table outside the system schemas, in `schema.table` order. (Partitioned
/// parents are left out: pgoutput publishes a partition's changes as the partition's.)
pub async fn tables(client: &Client) -> Result<Vec<TableId>, tokio_postgres::Error> {
    let sql = "SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c \
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
        WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
        AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%' \
        ORDER BY n.nspname, c.relname";
    Ok(rows(client, sql)
        .await?
        .into_iter()
        .filter_map(|r| {
            Some(TableId {
                oid: r.first()?.as_ref()?.parse().ok()?,
                schema: r.get(1)?.clone()?,
                name: r.get(2)?.clone()?,
            })
        })
        .collect())
}

/// A table by oid (`None` when it no longer exists).
pub async fn table(client: &Client, oid: u32) -> Result<Option<TableId>, tokio_postgres::Error> {
    let sql = format!(
        "SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c \
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = {oid}"
    );
    Ok(rows(client, &sql).await?.into_iter().next().and_then(|r| {
        Some(TableId {
            oid,
            schema: r.get(1)?.clone()?,
            name: r.get(2)?.clone()?,
        })
    }))
}

/// A table's columns in `attnum` order, as pgoutput sends them (no dropped or generated
/// columns), with nullability, primary key positions and enum labels. Domains are
/// described by their base type.
pub async fn columns(client: &Client, oid: u32) -> Result<Vec<Column>, tokio_postgres::Error> {
    let sql = format!(
        "SELECT a.attname, COALESCE(bt.typname, t.typname), \
           CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END, \
           NOT a.attnotnull, array_position(i.indkey::int2[], a.attnum), \
           CASE WHEN COALESCE(bt.typtype, t.typtype) = 'e' THEN \
             (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) \
              FROM pg_catalog.pg_enum e WHERE e.enumtypid = COALESCE(bt.oid, t.oid)) END, \
           COALESCE(bt.typtype, t.typtype) = 'e', \
           pg_catalog.format_type(a.atttypid, a.atttypmod), et.typname \
         FROM pg_catalog.pg_attribute a \
         JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
         LEFT JOIN pg_catalog.pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype \
         LEFT JOIN pg_catalog.pg_type et ON et.oid = COALESCE(bt.typelem, t.typelem) \
           AND COALESCE(bt.typcategory, t.typcategory) = 'A' \
         LEFT JOIN pg_catalog.pg_index i ON i.indrelid = a.attrelid AND i.indisprimary \
         WHERE a.attrelid = {oid} AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' \
         ORDER BY a.attnum"
    );
    Ok(rows(client, &sql)
        .await?
        .into_iter()
        .filter_map(|r| {
            let get = |i: usize| r.get(i).cloned().flatten();
            let is_enum = get(6).as_deref() == Some("t");
            Some(Column {
                name: get(0)?,
                type_name: get(1)?,
                type_modifier: get(2)?.parse().ok()?,
                nullable: get(3).as_deref() == Some("t"),
                key_position: get(4)
                    .and_then(|p| p.parse::<usize>().ok())
                    .map(|p| p.saturating_sub(1)),
                enum_labels: is_enum.then(|| {
                    get(5)
                        .map(|l| l.split(',').map(str::to_string).collect())
                        .unwrap_or_default()
                }),
                sql_type: get(7)?,
                element_type: get(8),
            })
        })
        .collect())
}

/// The columns of a pgoutput Relation message, described for decoding: names, types and
/// type modifiers as the message gives them (the WAL being decoded may predate the
/// current table definition: a column since dropped, added or retyped), nullability and
/// primary key positions from the current catalog where the column still exists.
pub async fn relation_columns(
    client: &Client,
    oid: u32,
    message: &[super::pgoutput::RelationColumn],
) -> Result<Vec<Column>, tokio_postgres::Error> {
    let current = columns(client, oid).await?;
    let mut type_oids: Vec<String> = message.iter().map(|c| c.type_oid.to_string()).collect();
    type_oids.sort();
    type_oids.dedup();
    let types: Vec<Vec<Option<String>>> = if type_oids.is_empty() {
        Vec::new()
    } else {
        let sql = format!(
            "SELECT t.oid, COALESCE(bt.typname, t.typname), COALESCE(bt.typtype, t.typtype) = 'e', \
               (SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder) \
                FROM pg_catalog.pg_enum e WHERE e.enumtypid = COALESCE(bt.oid, t.oid)), \
               et.typname \
             FROM pg_catalog.pg_type t \
             LEFT JOIN pg_catalog.pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype \
             LEFT JOIN pg_catalog.pg_type et ON et.oid = COALESCE(bt.typelem, t.typelem) \
               AND COALESCE(bt.typcategory, t.typcategory) = 'A' \
             WHERE t.oid IN ({})",
            type_oids.join(", ")
        );
        rows(client, &sql).await?
    };
    let type_of = |type_oid: u32| {
        types
            .iter()
            .find(|r| r.first().cloned().flatten() == Some(type_oid.to_string()))
    };
    Ok(message
        .iter()
        .map(|m| {
            let now = current.iter().find(|c| c.name == m.name);
            let t = type_of(m.type_oid);
            let get = |i: usize| t.and_then(|r| r.get(i).cloned().flatten());
            let is_enum = get(2).as_deref() == Some("t");
            Column {
                name: m.name.clone(),
                type_name: get(1)
                    .or_else(|| now.map(|c| c.type_name.clone()))
                    .unwrap_or_else(|| "text".into()),
                type_modifier: m.type_modifier,
                nullable: now.is_none_or(|c| c.nullable),
                key_position: now.and_then(|c| c.key_position),
                enum_labels: is_enum.then(|| {
                    get(3)
                        .map(|l| l.split(',').map(str::to_string).collect())
                        .unwrap_or_default()
                }),
                sql_type: now.map(|c| c.sql_type.clone()).unwrap_or_default(),
                element_type: if t.is_some() {
                    get(4)
                } else {
                    now.and_then(|c| c.element_type.clone())
                },
            }
        })
        .collect())
}
