//! Volumes as qcow2 files, through QEMU's block layer (`qemu-img`): real, sparse block
//! devices whose bytes survive restarts. Knows nothing of instances.

use std::path::{Path, PathBuf};
use std::process::Command;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum BlockError {
    #[error("qemu-img is not available")]
    NoQemuImg(#[source] std::io::Error),
    #[error("qemu-img {op} failed: {stderr}")]
    Qemu { op: &'static str, stderr: String },
    #[error("volume file I/O failed")]
    Io(#[from] std::io::Error),
}

/// Where volume files live: `<data dir>/volumes/<volume id>.qcow2`.
#[derive(Debug, Clone)]
pub struct BlockStore {
    dir: PathBuf,
}

const GIB: u64 = 1 << 30;

fn qemu_img(op: &'static str, args: &[&str]) -> Result<String, BlockError> {
    let out = Command::new("qemu-img")
        .args(args)
        .output()
        .map_err(BlockError::NoQemuImg)?;
    if !out.status.success() {
        return Err(BlockError::Qemu {
            op,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl BlockStore {
    pub fn open(data_dir: &Path) -> Result<BlockStore, BlockError> {
        let dir = data_dir.join("volumes");
        std::fs::create_dir_all(&dir)?;
        Ok(BlockStore { dir })
    }

    pub fn path(&self, volume_id: &str) -> PathBuf {
        self.dir.join(format!("{volume_id}.qcow2"))
    }

    /// Creates an empty volume of `size_gib` (sparse: it takes space only as it is written).
    pub fn create(&self, volume_id: &str, size_gib: u64) -> Result<(), BlockError> {
        let path = self.path(volume_id);
        let size = format!("{}", size_gib * GIB);
        qemu_img(
            "create",
            &[
                "create",
                "-q",
                "-f",
                "qcow2",
                &path.to_string_lossy(),
                &size,
            ],
        )?;
        Ok(())
    }

    /// Grows a volume to `size_gib`.
    pub fn grow(&self, volume_id: &str, size_gib: u64) -> Result<(), BlockError> {
        let path = self.path(volume_id);
        let size = format!("{}", size_gib * GIB);
        qemu_img(
            "resize",
            &[
                "resize",
                "-q",
                "-f",
                "qcow2",
                &path.to_string_lossy(),
                &size,
            ],
        )?;
        Ok(())
    }

    /// The virtual size in bytes, as QEMU reads it from the file.
    pub fn size_bytes(&self, volume_id: &str) -> Result<u64, BlockError> {
        let out = qemu_img(
            "info",
            &[
                "info",
                "--output=json",
                "-f",
                "qcow2",
                &self.path(volume_id).to_string_lossy(),
            ],
        )?;
        // The image's own `"virtual-size": N` comes after those of its child nodes (the file):
        // read the last one, without a JSON dependency.
        out.rsplit("\"virtual-size\":")
            .next()
            .and_then(|r| r.trim_start().split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .ok_or(BlockError::Qemu {
                op: "info",
                stderr: "no virtual-size in qemu-img info".into(),
            })
    }

    pub fn delete(&self, volume_id: &str) -> Result<(), BlockError> {
        match std::fs::remove_file(self.path(volume_id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Deletes every volume file (reset).
    pub fn clear(&self) -> Result<(), BlockError> {
        for entry in std::fs::read_dir(&self.dir)? {
            let p = entry?.path();
            if p.extension().is_some_and(|e| e == "qcow2") {
                std::fs::remove_file(p)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_grow_delete() {
        let dir = std::env::temp_dir().join(format!("kumo-blockstore-{}", std::process::id()));
        let b = BlockStore::open(&dir).unwrap();
        b.create("vol-1", 1).unwrap();
        assert_eq!(b.size_bytes("vol-1").unwrap(), GIB);
        // Sparse: a 1 GiB volume takes well under a megabyte on disk.
        assert!(std::fs::metadata(b.path("vol-1")).unwrap().len() < 1 << 20);
        b.grow("vol-1", 3).unwrap();
        assert_eq!(b.size_bytes("vol-1").unwrap(), 3 * GIB);
        b.delete("vol-1").unwrap();
        assert!(!b.path("vol-1").exists());
        b.delete("vol-1").unwrap();
        std::fs::remove_dir_all(dir).unwrap();
    }
}
