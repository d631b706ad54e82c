//! Live evidence from `/proc`, as `ss -tnp`, `ps --forest` and `lsns` would show it:
//! TCP connections with the processes that own each end, process trees, namespace
//! inodes. `rkind explain` quotes it beside the trace.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};

/// One TCP socket from `/proc/net/tcp`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpSocket {
    /// Local address.
    pub local: SocketAddrV4,
    /// Remote address (0.0.0.0:0 for listeners).
    pub remote: SocketAddrV4,
    /// `ESTAB`, `LISTEN`, … as `ss` names them.
    pub state: &'static str,
    /// The socket inode (links it to a process's fd).
    pub inode: u64,
}

fn parse_addr(hex: &str) -> Option<SocketAddrV4> {
    let (ip, port) = hex.split_once(':')?;
    let ip = u32::from_str_radix(ip, 16).ok()?;
    let port = u16::from_str_radix(port, 16).ok()?;
    // The kernel prints the address in host (little-endian) byte order.
    Some(SocketAddrV4::new(Ipv4Addr::from(u32::from_be(ip)), port))
}

fn state_name(code: &str) -> &'static str {
    match code {
        "01" => "ESTAB",
        "02" => "SYN-SENT",
        "03" => "SYN-RECV",
        "04" => "FIN-WAIT-1",
        "05" => "FIN-WAIT-2",
        "06" => "TIME-WAIT",
        "07" => "CLOSE",
        "08" => "CLOSE-WAIT",
        "09" => "LAST-ACK",
        "0A" => "LISTEN",
        "0B" => "CLOSING",
        _ => "UNKNOWN",
    }
}

/// Parses the text of `/proc/net/tcp`.
pub fn parse_proc_net_tcp(text: &str) -> Vec<TcpSocket> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            Some(TcpSocket {
                local: parse_addr(f.get(1)?)?,
                remote: parse_addr(f.get(2)?)?,
                state: state_name(f.get(3)?),
                inode: f.get(9)?.parse().ok()?,
            })
        })
        .collect()
}

/// The IPv4 TCP sockets of the current network namespace.
pub fn tcp_sockets() -> Vec<TcpSocket> {
    parse_proc_net_tcp(&std::fs::read_to_string("/proc/net/tcp").unwrap_or_default())
}

/// Socket inode → (pid, command name), from every process's open descriptors.
pub fn socket_owners() -> HashMap<u64, (u32, String)> {
    let mut out = HashMap::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return out;
    };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        let comm = std::fs::read_to_string(p.path().join("comm"))
            .unwrap_or_default()
            .trim()
            .to_string();
        for fd in fds.flatten() {
            if let Ok(link) = std::fs::read_link(fd.path())
                && let Some(inode) = link
                    .to_str()
                    .and_then(|l| l.strip_prefix("socket:["))
                    .and_then(|l| l.strip_suffix(']'))
                    .and_then(|l| l.parse().ok())
            {
                out.entry(inode).or_insert((pid, comm.clone()));
            }
        }
    }
    out
}

/// A process as `ps` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    /// Process id (host view).
    pub pid: u32,
    /// Parent.
    pub ppid: u32,
    /// Command line, spaces between arguments.
    pub args: String,
}

/// The fields of `/proc/<pid>/stat` after the command name, from field 3 (state) on:
/// index 1 is the parent, index 19 the start time in clock ticks after boot.
pub fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: parse after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(String::from).collect())
}

/// Reads one process.
pub fn process(pid: u32) -> Option<Proc> {
    let ppid = stat_fields(pid)?.get(1)?.parse().ok()?;
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args = raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    Some(Proc { pid, ppid, args })
}

/// Every process on the host.
pub fn processes() -> Vec<Proc> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .filter_map(process)
                .collect()
        })
        .unwrap_or_default()
}

/// `root` and its descendants, as indented `ps --forest` lines.
pub fn forest(all: &[Proc], root: u32) -> Vec<String> {
    fn walk(all: &[Proc], pid: u32, depth: usize, out: &mut Vec<String>) {
        if let Some(p) = all.iter().find(|p| p.pid == pid) {
            let mut args = p.args.clone();
            if args.len() > 100 {
                args.truncate(97);
                args.push_str("...");
            }
            out.push(format!(
                "{:>7} {:>7}  {}{}",
                p.pid,
                p.ppid,
                "  ".repeat(depth),
                args
            ));
            for c in all.iter().filter(|c| c.ppid == pid) {
                walk(all, c.pid, depth + 1, out);
            }
        }
    }
    let mut out = vec![format!("{:>7} {:>7}  COMMAND", "PID", "PPID")];
    walk(all, root, 0, &mut out);
    out
}

/// A process's namespace inodes (`pid` → inode …), as `lsns -p` shows them.
pub fn namespaces(pid: u32) -> Vec<(String, u64)> {
    ["pid", "mnt", "net", "ipc", "uts"]
        .iter()
        .filter_map(|ns| {
            let link = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).ok()?;
            let ino = link
                .to_str()?
                .split('[')
                .nth(1)?
                .trim_end_matches(']')
                .parse()
                .ok()?;
            Some((ns.to_string(), ino))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_tcp_lines_parse_as_ss_shows_them() {
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:C350 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 23456 1 0000000000000000 20 4 30 10 -1\n";
        let s = parse_proc_net_tcp(text);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].local, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(s[0].state, "LISTEN");
        assert_eq!(s[1].remote, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(s[1].local.port(), 50000);
        assert_eq!(s[1].state, "ESTAB");
        assert_eq!(s[1].inode, 23456);
    }

    #[test]
    fn this_process_is_found_with_its_namespaces() {
        let me = std::process::id();
        let p = process(me).expect("self");
        assert_eq!(p.pid, me);
        assert!(!p.args.is_empty());
        assert_eq!(namespaces(me).len(), 5);
        let f = forest(&processes(), me);
        assert!(f[1].contains(&me.to_string()), "{f:?}");
    }
}
