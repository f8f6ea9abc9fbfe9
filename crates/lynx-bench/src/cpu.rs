//! CPU time per operation, read from `/proc`: the server's, and PostgreSQL's when it runs on this
//! machine. On two cores shared by the server, the database and the load generator, operations per
//! second drift with whatever else the host does; the CPU an operation costs each process drifts far
//! less, and it says where a change saved or spent.

use std::time::Duration;

/// The kernel's clock tick for `/proc/<pid>/stat` (`USER_HZ`): 100 on x86_64 and aarch64.
const TICKS_PER_SECOND: u64 = 100;

/// User plus system time of a process — all its threads, the exited ones included — and of the children
/// it has reaped. `None` once it is gone.
pub fn of_process(pid: u32) -> Option<Duration> {
    ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?).map(|(_, t)| t)
}

/// User plus system time of every PostgreSQL process on this machine (backends, WAL writer,
/// checkpointer, …); `None` when there is none (a server elsewhere). A backend that ends meanwhile is
/// still counted: the postmaster reaps it, and its time moves into the postmaster's children's time.
pub fn of_postgres() -> Option<Duration> {
    let mut total = Duration::ZERO;
    let mut found = false;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = entry.file_name();
        if !name.to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit())) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        if let Some(("postgres", t)) = ticks(&stat) {
            total += t;
            found = true;
        }
    }
    found.then_some(total)
}

/// A `/proc/<pid>/stat` line's command name and its `utime + stime + cutime + cstime`. The name is in
/// parentheses and may hold spaces, so the fields are counted from the last `)`.
fn ticks(stat: &str) -> Option<(&str, Duration)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?;
    // After the name: state (field 3), …, utime, stime, cutime, cstime (fields 14 to 17).
    let mut total = 0;
    for field in stat.get(close + 1..)?.split_whitespace().skip(11).take(4) {
        total += field.parse::<u64>().ok()?;
    }
    Some((comm, Duration::from_millis(total * 1000 / TICKS_PER_SECOND)))
}

/// What the measured processes spent over a stretch of work.
#[derive(Debug, Clone, Copy, Default)]
pub struct Spent {
    pub server: Duration,
    /// `None` when no PostgreSQL process runs here (SQLite, or a server elsewhere).
    pub postgres: Option<Duration>,
}

impl Spent {
    pub fn add(self, other: Spent) -> Spent {
        Spent {
            server: self.server + other.server,
            postgres: match (self.postgres, other.postgres) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            },
        }
    }
}

/// A reading taken before a stretch of work; `spent` takes the one after it.
pub struct Meter {
    pid: u32,
    postgres: bool,
    server: Option<Duration>,
    database: Option<Duration>,
}

impl Meter {
    /// Starts measuring the server `pid`, and PostgreSQL's processes when `postgres`.
    pub fn start(pid: u32, postgres: bool) -> Self {
        Self { pid, postgres, server: of_process(pid), database: if postgres { of_postgres() } else { None } }
    }

    /// What was spent since `start`.
    pub fn spent(self) -> Spent {
        let server = of_process(self.pid).zip(self.server).map(|(after, before)| after.saturating_sub(before)).unwrap_or_default();
        let postgres = if self.postgres { of_postgres().zip(self.database).map(|(after, before)| after.saturating_sub(before)) } else { None };
        Spent { server, postgres }
    }
}

/// Milliseconds of CPU per operation, for a table cell (`—` when not measured).
pub fn per_op(spent: Option<Duration>, ops: u64) -> String {
    match spent {
        Some(d) if ops > 0 => format!("{:.3}", d.as_secs_f64() * 1000.0 / ops as f64),
        _ => "—".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_is_read_from_after_the_command_name() {
        let line = "4242 (lynx-sqlite (w)) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 7 3 20 0 9 0 100 0 0";
        let (comm, t) = ticks(line).unwrap();
        assert_eq!(comm, "lynx-sqlite (w)");
        assert_eq!(t, Duration::from_millis(3100));
    }

    #[test]
    fn this_process_spends_cpu() {
        let before = of_process(std::process::id()).unwrap();
        let mut x = 0u64;
        let until = std::time::Instant::now() + Duration::from_millis(60);
        while std::time::Instant::now() < until {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let after = of_process(std::process::id()).unwrap();
        assert!(after >= before + Duration::from_millis(20), "{before:?} → {after:?}");
    }
}
