//! Container log files in the CRI log format (`<RFC3339Nano> <stdout|stderr> <P|F> <text>`),
//! written by the runtime from a container's stdout/stderr and read by the kubelet for
//! `kubectl logs`. Lines longer than [`MAX_LINE`] are split into partial (`P`) records;
//! files are rotated by size, keeping a few old ones.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// Longest record before a line is split into partial records.
pub const MAX_LINE: usize = 16 * 1024;

/// Errors writing a log file.
#[derive(Debug, thiserror::Error)]
#[error("container log {path}: {source}")]
pub struct LogError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    pub source: std::io::Error,
}

/// Which output stream a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Writes one container's log file.
pub struct LogWriter {
    path: PathBuf,
    file: File,
    size: u64,
    max_size: u64,
    max_files: usize,
    pending: [Vec<u8>; 2],
}

fn timestamp() -> String {
    jiff::fmt::strtime::format("%Y-%m-%dT%H:%M:%S.%9fZ", jiff::Timestamp::now()).unwrap_or_default()
}

impl LogWriter {
    /// Opens (appending) the log file at `path`; rotates past `max_size` bytes keeping
    /// `max_files` old files.
    pub fn open(path: &Path, max_size: u64, max_files: usize) -> Result<Self, LogError> {
        let err = |source| LogError {
            path: path.to_path_buf(),
            source,
        };
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(err)?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(LogWriter {
            path: path.to_path_buf(),
            file,
            size,
            max_size,
            max_files,
            pending: [Vec::new(), Vec::new()],
        })
    }

    fn record(&mut self, stream: Stream, tag: &str, content: &[u8]) -> Result<(), LogError> {
        let mut line = format!("{} {} {} ", timestamp(), stream.as_str(), tag).into_bytes();
        line.extend_from_slice(content);
        line.push(b'\n');
        self.file.write_all(&line).map_err(|source| LogError {
            path: self.path.clone(),
            source,
        })?;
        self.size += line.len() as u64;
        if self.max_size > 0 && self.size > self.max_size {
            self.rotate()?;
        }
        Ok(())
    }

    /// Appends output of `stream`, one record per complete line; an incomplete tail waits
    /// for its newline (or is written as a partial record once it exceeds [`MAX_LINE`]).
    pub fn write(&mut self, stream: Stream, data: &[u8]) -> Result<(), LogError> {
        let idx = stream as usize;
        let mut buf = std::mem::take(&mut self.pending[idx]);
        buf.extend_from_slice(data);
        let mut start = 0;
        while let Some(pos) = buf[start..].iter().position(|b| *b == b'\n') {
            let mut line = &buf[start..start + pos];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            let line = line.to_vec();
            self.write_full(stream, &line)?;
            start += pos + 1;
        }
        let mut rest = buf[start..].to_vec();
        while rest.len() > MAX_LINE {
            let tail = rest.split_off(MAX_LINE);
            self.record(stream, "P", &rest)?;
            rest = tail;
        }
        self.pending[idx] = rest;
        Ok(())
    }

    fn write_full(&mut self, stream: Stream, line: &[u8]) -> Result<(), LogError> {
        let mut chunks = line.chunks(MAX_LINE).peekable();
        if chunks.peek().is_none() {
            return self.record(stream, "F", b"");
        }
        while let Some(c) = chunks.next() {
            let tag = if chunks.peek().is_some() { "P" } else { "F" };
            self.record(stream, tag, c)?;
        }
        Ok(())
    }

    /// The stream ended: an unterminated last line is written as a full record.
    pub fn close_stream(&mut self, stream: Stream) -> Result<(), LogError> {
        let rest = std::mem::take(&mut self.pending[stream as usize]);
        if !rest.is_empty() {
            self.write_full(stream, &rest)?;
        }
        Ok(())
    }

    /// Renames the current file to `<file>.<n>` (older ones shift up) and starts anew.
    pub fn rotate(&mut self) -> Result<(), LogError> {
        let name = |n: usize| PathBuf::from(format!("{}.{n}", self.path.display()));
        let _ = std::fs::remove_file(name(self.max_files.max(1)));
        for n in (1..self.max_files.max(1)).rev() {
            let _ = std::fs::rename(name(n), name(n + 1));
        }
        let _ = std::fs::rename(&self.path, name(1));
        self.reopen()
    }

    /// Reopens the file (after an external rotation, CRI `ReopenContainerLog`).
    pub fn reopen(&mut self) -> Result<(), LogError> {
        self.file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|source| LogError {
                path: self.path.clone(),
                source,
            })?;
        self.size = self.file.metadata().map(|m| m.len()).unwrap_or(0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_partials_and_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("0.log");
        let mut w = LogWriter::open(&p, 0, 2).unwrap();
        w.write(Stream::Stdout, b"hel").unwrap();
        w.write(Stream::Stderr, b"oops\r\n").unwrap();
        w.write(Stream::Stdout, b"lo\nno newline").unwrap();
        w.close_stream(Stream::Stdout).unwrap();
        let long = vec![b'x'; MAX_LINE + 10];
        w.write(Stream::Stdout, &long).unwrap();
        w.write(Stream::Stdout, b"\n").unwrap();
        let text = std::fs::read_to_string(&p).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].ends_with(" stderr F oops"), "{}", lines[0]);
        assert!(lines[1].ends_with(" stdout F hello"));
        assert!(lines[2].ends_with(" stdout F no newline"));
        assert!(lines[3].contains(" stdout P xxx"));
        assert!(lines[4].ends_with(" stdout F xxxxxxxxxx"));
        assert!(
            lines[0]
                .split(' ')
                .next()
                .unwrap()
                .parse::<jiff::Timestamp>()
                .is_ok()
        );
        let mut w = LogWriter::open(&p, 10, 2).unwrap();
        w.write(Stream::Stdout, b"rotate me please\n").unwrap();
        assert!(dir.path().join("0.log.1").exists());
        assert_eq!(std::fs::metadata(&p).unwrap().len(), 0);
    }
}
