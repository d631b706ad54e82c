//! Per-stream counts of one session (bytes and messages each way, how each stream
//! ended), terminal resizes and the time of the first byte towards the client — what
//! the hops that see individual streams add to their trace records.

use std::sync::Mutex;

use super::model::{Resize, StreamStats};
use crate::stream::remotecommand::TerminalSize;

/// Per-stream counts and resizes of one session, for its trace.
#[derive(Default)]
pub struct Tally {
    streams: Mutex<Vec<StreamStats>>,
    resizes: Mutex<Vec<(u128, TerminalSize)>>,
    first_output_ns: std::sync::atomic::AtomicU64,
}

impl Tally {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<StreamStats>> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn entry<'a>(streams: &'a mut Vec<StreamStats>, name: &str) -> &'a mut StreamStats {
        let i = match streams.iter().position(|s| s.name == name) {
            Some(i) => i,
            None => {
                streams.push(StreamStats {
                    name: name.to_string(),
                    ..Default::default()
                });
                streams.len() - 1
            }
        };
        &mut streams[i]
    }

    /// Lists a stream before anything moved on it (so an idle stream still shows).
    pub fn declare(&self, name: &str) {
        let mut streams = self.lock();
        Self::entry(&mut streams, name);
    }

    /// Declares the streams of a remote-command session with these options.
    pub fn declare_session(&self, opts: &crate::stream::remotecommand::StreamOptions) {
        self.declare("error");
        if opts.stdin {
            self.declare("stdin");
        }
        if opts.stdout {
            self.declare("stdout");
        }
        if opts.stderr && !opts.tty {
            self.declare("stderr");
        }
        if opts.tty {
            self.declare("resize");
        }
    }

    /// Counts one message of `n` bytes on stream `name`, towards the process or not.
    pub fn add(&self, name: &str, to_process: bool, n: usize) {
        if !to_process {
            let now = super::model::unix_ns() as u64;
            let _ = self.first_output_ns.compare_exchange(
                0,
                now,
                std::sync::atomic::Ordering::Relaxed,
                std::sync::atomic::Ordering::Relaxed,
            );
        }
        let mut streams = self.lock();
        let e = Self::entry(&mut streams, name);
        if to_process {
            e.bytes_in += n as u64;
            e.messages_in += 1;
        } else {
            e.bytes_out += n as u64;
            e.messages_out += 1;
        }
    }

    /// Notes how stream `name` ended.
    pub fn closed(&self, name: &str, how: &str) {
        let mut streams = self.lock();
        let e = Self::entry(&mut streams, name);
        if e.closed.is_empty() {
            e.closed = how.to_string();
        }
    }

    /// Notes a terminal resize.
    pub fn resize(&self, size: TerminalSize) {
        self.resizes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((super::model::unix_ns(), size));
    }

    /// The counts so far, in order of first use.
    pub fn streams(&self) -> Vec<StreamStats> {
        self.lock().clone()
    }

    /// The resizes, as offsets from `start_ns`.
    pub fn resizes(&self, start_ns: u128) -> Vec<Resize> {
        self.resizes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(t, s)| Resize {
                offset_ms: super::model::ms_between(start_ns, *t),
                width: s.width,
                height: s.height,
            })
            .collect()
    }

    /// Milliseconds from `start_ns` to the first byte towards the client.
    pub fn first_output_after(&self, start_ns: u128) -> Option<f64> {
        match self
            .first_output_ns
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            0 => None,
            t => Some(super::model::ms_between(start_ns, t as u128)),
        }
    }
}
