//! `lynx-bench disk`: the disk's own cost of a durable write, the floor under every SQLite commit.
//! It writes `--bytes` at a time into a preallocated file (overwriting, as SQLite's log does once it has
//! started over) and syncs each write with fdatasync, at a fixed rate on a schedule; each latency runs
//! from the write to the end of its sync. Run it beside `run --rate` to tell the disk's tail from Lynx's.

use std::{
    io::{Seek, SeekFrom, Write},
    path::PathBuf,
    time::{Duration, Instant},
};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Writes per second, each synced before the next.
    #[arg(long, default_value_t = 1000)]
    rate: u32,
    /// How long to write.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Bytes per write (a read's commit writes about ten 4 KB pages of log).
    #[arg(long, default_value_t = 40_960)]
    bytes: usize,
    /// Directory for the scratch file (removed after): the one Lynx's database would live in.
    #[arg(long, default_value = ".")]
    dir: PathBuf,
}

/// The file the writes cycle over.
const FILE_BYTES: u64 = 16 << 20;

pub fn disk(args: Args) -> Result<(), String> {
    if args.rate == 0 || args.bytes == 0 || args.bytes as u64 > FILE_BYTES {
        return Err(format!("--rate must be positive and --bytes from 1 to {FILE_BYTES}"));
    }
    let scratch = tempfile::NamedTempFile::new_in(&args.dir).map_err(|e| format!("{}: {e}", args.dir.display()))?;
    let mut file = scratch.as_file();
    file.set_len(FILE_BYTES).map_err(|e| e.to_string())?;
    file.sync_all().map_err(|e| e.to_string())?;
    let block = vec![0x5a_u8; args.bytes];
    let total = u64::from(args.rate) * args.seconds;
    let interval = Duration::from_secs(1) / args.rate;
    let mut latencies = Vec::with_capacity(total as usize);
    let (start, mut offset) = (Instant::now(), 0u64);
    for i in 0..total {
        let due = start + interval * i as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let began = Instant::now();
        file.seek(SeekFrom::Start(offset)).map_err(|e| e.to_string())?;
        file.write_all(&block).map_err(|e| e.to_string())?;
        file.sync_data().map_err(|e| e.to_string())?;
        latencies.push(began.elapsed().as_micros() as u64);
        offset = (offset + args.bytes as u64) % (FILE_BYTES - args.bytes as u64);
    }
    latencies.sort_unstable();
    let at = |p: f64| latencies[((latencies.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0;
    println!("| Writes/s | Bytes | Syncs | p50 ms | p99 ms | p99.9 ms | max ms |\n|---:|---:|---:|---:|---:|---:|---:|");
    println!("| {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} |", args.rate, args.bytes, latencies.len(), at(0.5), at(0.99), at(0.999), at(1.0));
    Ok(())
}
