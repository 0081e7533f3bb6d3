//! The process's resident memory, from /proc (Linux). Elsewhere these return `None` and
//! callers fall back to their own accounting.

fn status_kib(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Bytes resident now.
pub fn resident_bytes() -> Option<u64> {
    status_kib("VmRSS:").map(|k| k * 1024)
}

/// The most bytes resident at once so far.
pub fn peak_resident_bytes() -> Option<u64> {
    status_kib("VmHWM:").map(|k| k * 1024)
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(target_os = "linux")]
    fn linux_reports_resident_memory() {
        let now = super::resident_bytes().unwrap();
        let peak = super::peak_resident_bytes().unwrap();
        assert!(now > 0 && peak >= now);
    }
}
