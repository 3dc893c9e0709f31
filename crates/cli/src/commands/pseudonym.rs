//! `dhub pseudonym --entity E [--format F] [VALUE ...]`: one pseudonym per value, in
//! order, one per line. Values come from the arguments or, when none are given, from
//! stdin one per line (streamed: any number of lines). A blank value prints an empty
//! line; a value that does not normalise prints an empty line too, is reported on
//! stderr by its position (never its content), and makes the exit code 1.

use std::io::{BufRead, BufWriter, Write};

use anyhow::{Context, bail};
use dhub_deid::{IdFormat, Pseudonymiser};

use crate::args::{Global, PseudonymArgs};

pub fn run(global: &Global, args: &PseudonymArgs) -> anyhow::Result<()> {
    let format = IdFormat::from(args.format);
    let key = super::keys::load(&global.key)?;
    let p = Pseudonymiser::new(&key, &args.entity)?;
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let mut failed = 0usize;
    let mut one = |n: usize, value: &str, out: &mut BufWriter<_>| -> anyhow::Result<()> {
        match p.pseudonym(value, format) {
            Ok(Some(ps)) => writeln!(out, "{ps}")?,
            Ok(None) => writeln!(out)?,
            Err(reason) => {
                failed += 1;
                eprintln!("dhub: value {n}: {reason}");
                writeln!(out)?;
            }
        }
        Ok(())
    };
    if args.values.is_empty() {
        let stdin = std::io::stdin();
        let mut line = Vec::new();
        let mut reader = stdin.lock();
        let mut n = 0usize;
        loop {
            line.clear();
            if reader
                .read_until(b'\n', &mut line)
                .context("reading stdin")?
                == 0
            {
                break;
            }
            n += 1;
            let text = std::str::from_utf8(&line)
                .with_context(|| format!("stdin line {n} is not valid UTF-8"))?;
            let text = text.strip_suffix('\n').unwrap_or(text);
            let text = text.strip_suffix('\r').unwrap_or(text);
            one(n, text, &mut out)?;
        }
    } else {
        for (i, v) in args.values.iter().enumerate() {
            one(i + 1, v, &mut out)?;
        }
    }
    out.flush()?;
    if failed > 0 {
        bail!(
            "{failed} value(s) could not be pseudonymised as {format} (their lines are empty); \
             check the values or choose another --format"
        );
    }
    Ok(())
}
