//! A QMP client (QEMU's monitor protocol, spoken by `qemu-system-x86_64` and
//! `qemu-storage-daemon`), and the names a volume's disk has in QEMU and in the guest.

use crate::ComputeError;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::time::Duration;

/// A volume's serial in the guest: its id without the dash, as EBS's NVMe serials are.
pub fn serial(volume_id: &str) -> String {
    volume_id.replace('-', "")
}

/// A disk's block node and device ids in QEMU.
pub fn node(volume_id: &str) -> String {
    format!("d{}", serial(volume_id))
}

pub fn device_id(volume_id: &str) -> String {
    format!("v{}", serial(volume_id))
}

/// Sends QMP commands to a monitor socket, one after the other; fails on the first error.
pub fn qmp(socket: &Path, commands: &[String]) -> Result<(), ComputeError> {
    qmp_returns(socket, commands).map(|_| ())
}

/// Like [`qmp`], returning each command's `return` line.
pub fn qmp_returns(socket: &Path, commands: &[String]) -> Result<Vec<String>, ComputeError> {
    let mut sock = std::os::unix::net::UnixStream::connect(socket)
        .map_err(|e| ComputeError::io("QMP socket", e))?;
    sock.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let mut reader = BufReader::new(
        sock.try_clone()
            .map_err(|e| ComputeError::io("QMP socket", e))?,
    );
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .map_err(|e| ComputeError::io("QMP greeting", e))?;
    let all = std::iter::once(r#"{"execute":"qmp_capabilities"}"#.to_string())
        .chain(commands.iter().cloned());
    let mut out = Vec::new();
    for c in all {
        sock.write_all(c.as_bytes())
            .and_then(|_| sock.write_all(b"\n"))
            .map_err(|e| ComputeError::io("QMP", e))?;
        loop {
            line.clear();
            if reader
                .read_line(&mut line)
                .map_err(|e| ComputeError::io("QMP", e))?
                == 0
            {
                return Err(ComputeError::Guest("QMP closed".into()));
            }
            if line.contains("\"return\"") {
                out.push(line.trim().to_string());
                break;
            }
            if line.contains("\"error\"") {
                return Err(ComputeError::Guest(format!("QMP: {}", line.trim())));
            }
        }
    }
    out.remove(0);
    Ok(out)
}
