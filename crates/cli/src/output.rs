//! Printing: borderless tables for people, JSON for scripts.
//!
//! `say!` and `note!` are `println!` and `eprintln!` that ignore a closed pipe
//! (`moldau topics list | head -1`) instead of panicking.

/// A line on stdout; a closed stdout is ignored.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// A line on stderr; a closed stderr is ignored.
macro_rules! note {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

use std::io::Write;

use comfy_table::{presets, Table};

/// A borderless table with an upper-case header row, in the style of `kubectl get`.
pub fn table<I, S>(header: I) -> Table
where
    I: IntoIterator<Item = S>,
    S: Into<comfy_table::Cell>,
{
    let mut table = Table::new();
    table.load_preset(presets::NOTHING).set_header(header);
    for column in table.column_iter_mut() {
        column.set_padding((0, 3));
    }
    table
}

/// Prints a table, trimming the trailing padding of each line.
pub fn print_table(table: &Table) {
    let mut out = std::io::stdout().lock();
    for line in table.lines() {
        // A closed pipe (`| head`) is not an error worth reporting.
        if writeln!(out, "{}", line.trim_end()).is_err() {
            return;
        }
    }
}

/// Prints one JSON document on its own line.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match serde_json::to_writer_pretty(&mut out, value) {
        Err(e) if e.is_io() => return Ok(()), // stdout closed
        result => result?,
    }
    let _ = writeln!(out);
    Ok(())
}

/// A list of broker ids as Kafka's tools print them: `1,2,3`.
pub fn id_list(ids: &[i32]) -> String {
    ids.iter()
        .map(|id| id.to_string())
        .collect::<Vec<_>>()
        .join(",")
}
