//! Volumes as qcow2 files, through QEMU's block layer (`qemu-img`): real, sparse block
//! devices whose bytes survive restarts. Knows nothing of instances.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use thiserror::Error;

mod pool;

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
#[derive(Clone)]
pub struct BlockStore {
    dir: PathBuf,
    templates: Arc<Templates>,
    /// Empty images made ahead of need (see [`pool`]).
    pool: Arc<pool::Pool>,
}

impl std::fmt::Debug for BlockStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockStore")
            .field("dir", &self.dir)
            .finish()
    }
}

/// New-image templates by (backing layer, size in bytes): their length and non-zero 4 KiB
/// blocks, made with `qemu-img` on first use and kept in memory.
struct Templates {
    dir: PathBuf,
    made: std::sync::Mutex<std::collections::HashMap<TemplateKey, Template>>,
}

type TemplateKey = pool::Kind;
type Template = Arc<(u64, Vec<(u64, Vec<u8>)>)>;

static TEMPLATE_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

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
        let templates = Arc::new(Templates {
            dir: dir.clone(),
            made: Default::default(),
        });
        let t = templates.clone();
        let make: pool::Maker = Arc::new(move |path, kind| {
            let tpl = t
                .get(kind.0.as_deref(), kind.1)
                .map_err(std::io::Error::other)?;
            write_copy(&tpl, path).map_err(std::io::Error::other)
        });
        let pool = pool::Pool::open(dir.join(".pool"), make)?;
        Ok(BlockStore {
            dir,
            templates,
            pool,
        })
    }

    pub fn path(&self, volume_id: &str) -> PathBuf {
        self.dir.join(format!("{volume_id}.qcow2"))
    }

    /// Creates an empty volume of `size_gib` (sparse: it takes space only as it is written).
    pub fn create(&self, volume_id: &str, size_gib: u64) -> Result<(), BlockError> {
        create_qcow2(&self.path(volume_id), size_gib)
    }

    /// Creates an empty volume like [`create`](Self::create), by copying the non-zero blocks of
    /// a blank image of the same size made once (tens of microseconds, where `qemu-img create`
    /// costs milliseconds: it matters when a launch makes a root volume per instance).
    pub fn create_blank(&self, volume_id: &str, size_gib: u64) -> Result<(), BlockError> {
        self.new_image(&self.path(volume_id), None, size_gib * GIB)
    }

    /// A new empty image, from the pool when one is ready there, else copied from the
    /// template now. Either way the file holds the same bytes.
    fn new_image(&self, path: &Path, backing: Option<&str>, size: u64) -> Result<(), BlockError> {
        if self.pool.take(&(backing.map(str::to_string), size), path) {
            return Ok(());
        }
        self.copy_template(path, backing, size)
    }

    /// Writes a new qcow2 file at `path`: empty, or an empty overlay on `backing` (a layer's
    /// id), `size` bytes large. It copies the non-zero blocks of a template image that
    /// `qemu-img create` made once for that backing and size. A qcow2 header names its
    /// backing file but holds nothing read from it, so the copy is the same file `qemu-img`
    /// would have made.
    fn copy_template(
        &self,
        path: &Path,
        backing: Option<&str>,
        size: u64,
    ) -> Result<(), BlockError> {
        write_copy(&self.templates.get(backing, size)?, path)
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

    /// Freezes a volume's top layer as snapshot `snapshot_id` and gives the volume a fresh,
    /// empty overlay on it. Costs as much as a rename and a small file: the frozen layer holds
    /// only what was written since the volume's previous snapshot.
    /// `size_gib` is the volume's size, which its new overlay keeps.
    pub fn snapshot(
        &self,
        volume_id: &str,
        snapshot_id: &str,
        size_gib: u64,
    ) -> Result<(), BlockError> {
        let vol = self.path(volume_id);
        let snap = self.path(snapshot_id);
        std::fs::rename(&vol, &snap)?;
        let made = self.copy_template(&vol, Some(snapshot_id), size_gib * GIB);
        if let Err(e) = made {
            // Put the volume back as it was.
            std::fs::rename(&snap, &vol)?;
            return Err(e);
        }
        // A root volume's file-system layer (see `root_data`) is frozen with it.
        if let Err(e) = self.copy_root_data(volume_id, snapshot_id) {
            let _ = std::fs::remove_file(&vol);
            std::fs::rename(&snap, &vol)?;
            return Err(e);
        }
        Ok(())
    }

    /// Copies a layer's root data directory, if it has one, to another layer: owners, modes,
    /// links, xattrs and overlayfs whiteouts kept (`cp -a`).
    fn copy_root_data(&self, from: &str, to: &str) -> Result<(), BlockError> {
        let src = self.root_data(from);
        if !src.is_dir() {
            return Ok(());
        }
        let dst = self.root_data(to);
        let _ = std::fs::remove_dir_all(&dst);
        let out = Command::new("cp").arg("-a").arg(&src).arg(&dst).output()?;
        if !out.status.success() {
            let _ = std::fs::remove_dir_all(&dst);
            return Err(BlockError::Io(std::io::Error::other(format!(
                "cp -a {}: {}",
                src.display(),
                String::from_utf8_lossy(&out.stderr).trim()
            ))));
        }
        Ok(())
    }

    /// A new volume holding exactly a snapshot's bytes: an overlay on the snapshot's layer,
    /// `size_gib` large (at least the snapshot's size).
    pub fn restore(
        &self,
        volume_id: &str,
        snapshot_id: &str,
        size_gib: u64,
    ) -> Result<(), BlockError> {
        self.new_image(&self.path(volume_id), Some(snapshot_id), size_gib * GIB)?;
        if let Err(e) = self.copy_root_data(snapshot_id, volume_id) {
            let _ = self.delete(volume_id);
            return Err(e);
        }
        Ok(())
    }

    /// A new volume holding a snapshot's bytes in a standalone file, sharing no layer with
    /// the snapshot: for a snapshot of another account, which its owner may delete at any time.
    pub fn restore_standalone(
        &self,
        volume_id: &str,
        snapshot_id: &str,
        size_gib: u64,
    ) -> Result<(), BlockError> {
        self.restore(volume_id, snapshot_id, size_gib)?;
        if let Err(e) = self.rebase(volume_id, None) {
            let _ = self.delete(volume_id);
            return Err(e);
        }
        Ok(())
    }

    /// Moves a layer (a volume's or a snapshot's) off its backing layer onto `new_backing`
    /// (`None`: standalone), copying in whatever it read from the old one, so its contents do
    /// not change. This is how a snapshot in the middle of a chain is deleted.
    pub fn rebase(&self, id: &str, new_backing: Option<&str>) -> Result<(), BlockError> {
        let backing = new_backing
            .map(|b| format!("{b}.qcow2"))
            .unwrap_or_default();
        let path = self.path(id);
        let mut args = vec!["rebase", "-q", "-f", "qcow2", "-b", backing.as_str()];
        if new_backing.is_some() {
            args.extend(["-F", "qcow2"]);
        }
        let p = path.to_string_lossy();
        args.push(&p);
        // Relative backing names resolve from the image's directory.
        let out = Command::new("qemu-img")
            .args(&args)
            .current_dir(&self.dir)
            .output()
            .map_err(BlockError::NoQemuImg)?;
        if !out.status.success() {
            return Err(BlockError::Qemu {
                op: "rebase",
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        Ok(())
    }

    /// Whether two layers read the same bytes (`qemu-img compare`).
    pub fn same_contents(&self, a: &str, b: &str) -> Result<bool, BlockError> {
        let out = Command::new("qemu-img")
            .args(["compare", "-q", "-f", "qcow2", "-F", "qcow2"])
            .arg(self.path(a))
            .arg(self.path(b))
            .output()
            .map_err(BlockError::NoQemuImg)?;
        Ok(out.status.success())
    }

    /// A root volume's files as the `ns` compute driver keeps them: the writable layer of
    /// the instance's root file system, beside the volume's qcow2 file.
    pub fn root_data(&self, volume_id: &str) -> PathBuf {
        self.dir.join(format!("{volume_id}.root"))
    }

    pub fn delete(&self, volume_id: &str) -> Result<(), BlockError> {
        // Pooled images stacked on this layer would name a file that is gone.
        self.pool.forget_layer(volume_id);
        match std::fs::remove_dir_all(self.root_data(volume_id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
            _ => {}
        }
        match std::fs::remove_file(self.path(volume_id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Deletes every volume file (reset). A file already gone is no error.
    pub fn clear(&self) -> Result<(), BlockError> {
        self.pool.clear();
        let gone = |r: std::io::Result<()>| match r {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
        for entry in std::fs::read_dir(&self.dir)? {
            let p = entry?.path();
            if p.extension().is_some_and(|e| e == "qcow2") {
                gone(std::fs::remove_file(p))?;
            } else if p.extension().is_some_and(|e| e == "root") {
                gone(std::fs::remove_dir_all(p))?;
            }
        }
        Ok(())
    }
}

/// Writes a template's copy at `path`, which must not exist yet. A qcow2 header names its
/// backing file but holds nothing read from it, so the copy is the same file `qemu-img`
/// would have made.
fn write_copy(t: &Template, path: &Path) -> Result<(), BlockError> {
    // Sparse: only the template's non-zero blocks are written, the rest left as holes.
    use std::os::unix::fs::FileExt;
    let out = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)?;
    let written =
        t.1.iter()
            .try_for_each(|(offset, block)| out.write_all_at(block, *offset));
    if let Err(e) = written.and_then(|_| out.set_len(t.0)) {
        let _ = std::fs::remove_file(path);
        return Err(e.into());
    }
    Ok(())
}

impl Templates {
    /// The template for a backing layer and size.
    fn get(&self, backing: Option<&str>, size: u64) -> Result<Template, BlockError> {
        let key = (backing.map(str::to_string), size);
        if let Some(t) = self
            .made
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(t.clone());
        }
        // Made beside the volumes, so that the relative backing name resolves as it will for
        // the copies.
        let n = TEMPLATE_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = self
            .dir
            .join(format!(".template-{}-{n}.qcow2", std::process::id()));
        let made = overlay_qcow2(&tmp, backing, size);
        let bytes = made.and_then(|_| Ok(std::fs::read(&tmp)?));
        let _ = std::fs::remove_file(&tmp);
        let bytes = bytes?;
        let blocks = bytes
            .chunks(4096)
            .enumerate()
            .filter(|(_, c)| c.iter().any(|b| *b != 0))
            .map(|(i, c)| ((i * 4096) as u64, c.to_vec()))
            .collect();
        let t: Template = Arc::new((bytes.len() as u64, blocks));
        let mut all = self.made.lock().unwrap_or_else(|e| e.into_inner());
        // A few KiB each; a bound keeps a long-lived server from collecting them forever.
        if all.len() >= 256 {
            all.clear();
        }
        all.insert(key, t.clone());
        Ok(t)
    }
}

/// `qemu-img create` of an empty qcow2 image.
fn create_qcow2(path: &Path, size_gib: u64) -> Result<(), BlockError> {
    overlay_qcow2(path, None, size_gib * GIB)
}

/// `qemu-img create` of a qcow2 image of `size` bytes: empty, or an empty overlay on the
/// layer `backing`, named relative to the image's directory.
fn overlay_qcow2(path: &Path, backing: Option<&str>, size: u64) -> Result<(), BlockError> {
    let backing = backing.map(|b| format!("{b}.qcow2"));
    let path = path.to_string_lossy();
    let size = size.to_string();
    let mut args = vec!["create", "-q", "-f", "qcow2"];
    if let Some(b) = &backing {
        args.extend(["-b", b.as_str(), "-F", "qcow2"]);
    }
    args.extend([path.as_ref(), size.as_str()]);
    qemu_img("create", &args)?;
    Ok(())
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
        // A blank volume copied from the template is its own file of the asked size.
        b.create_blank("vol-b1", 2).unwrap();
        b.create_blank("vol-b2", 2).unwrap();
        assert_eq!(b.size_bytes("vol-b2").unwrap(), 2 * GIB);
        write(&b, "vol-b1", 9, 0);
        assert!(reads(&b, "vol-b1", 9, 0) && reads(&b, "vol-b2", 0, 0));
        // Sparse: a 1 GiB volume takes well under a megabyte on disk.
        assert!(std::fs::metadata(b.path("vol-1")).unwrap().len() < 1 << 20);
        b.grow("vol-1", 3).unwrap();
        assert_eq!(b.size_bytes("vol-1").unwrap(), 3 * GIB);
        b.delete("vol-1").unwrap();
        assert!(!b.path("vol-1").exists());
        b.delete("vol-1").unwrap();
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn write(b: &BlockStore, id: &str, pattern: u8, offset_mib: u64) {
        let cmd = format!("write -P {pattern} {}M 1M", offset_mib);
        let out = Command::new("qemu-io")
            .args(["-f", "qcow2", "-c", &cmd])
            .arg(b.path(id))
            .output()
            .unwrap();
        assert!(out.status.success());
    }

    fn reads(b: &BlockStore, id: &str, pattern: u8, offset_mib: u64) -> bool {
        let cmd = format!("read -P {pattern} {}M 1M", offset_mib);
        let out = Command::new("qemu-io")
            .args(["-f", "qcow2", "-c", &cmd])
            .arg(b.path(id))
            .output()
            .unwrap();
        out.status.success()
            && !String::from_utf8_lossy(&out.stdout).contains("Pattern verification failed")
    }

    #[test]
    fn pooled_images_are_real_and_their_own() {
        let dir = std::env::temp_dir().join(format!("kumo-blockstore-pool-{}", std::process::id()));
        let b = BlockStore::open(&dir).unwrap();
        b.create("vol-1", 1).unwrap();
        write(&b, "vol-1", 5, 0);
        b.snapshot("vol-1", "snap-1", 1).unwrap();
        // The first restore makes its file; the pool then keeps some for that snapshot.
        b.restore("vol-2", "snap-1", 2).unwrap();
        let kind = (Some("snap-1".to_string()), 2 * GIB);
        b.pool.wait_ready(&kind, 1);
        // Renamed out of the pool: vol-3 is one of the files that were ready there.
        use std::os::unix::fs::MetadataExt;
        let pooled: Vec<u64> = std::fs::read_dir(dir.join("volumes/.pool"))
            .unwrap()
            .flatten()
            .flat_map(|batch| std::fs::read_dir(batch.path()).unwrap().flatten())
            .map(|f| f.metadata().unwrap().ino())
            .collect();
        b.restore("vol-3", "snap-1", 2).unwrap();
        let ino = std::fs::metadata(b.path("vol-3")).unwrap().ino();
        assert!(pooled.contains(&ino), "vol-3 came from the pool");
        // A pooled overlay reads its snapshot, has its size, and keeps its writes to itself.
        assert!(reads(&b, "vol-3", 5, 0));
        assert_eq!(b.size_bytes("vol-3").unwrap(), 2 * GIB);
        write(&b, "vol-3", 6, 0);
        assert!(reads(&b, "vol-3", 6, 0) && reads(&b, "vol-2", 5, 0));
        // Its header is the one a direct copy gets.
        let direct = dir.join("direct.qcow2");
        b.copy_template(&direct, Some("snap-1"), 2 * GIB).unwrap();
        let head = |p: &Path| std::fs::read(p).unwrap()[..512].to_vec();
        assert_eq!(head(&b.path("vol-2")), head(&direct));
        // Deleting the snapshot's layer takes the pooled files stacked on it.
        b.delete("snap-1").unwrap();
        assert_eq!(b.pool.ready(&kind), 0);
        drop(b);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn snapshots_are_layers_and_middle_ones_can_go() {
        let dir = std::env::temp_dir().join(format!("kumo-blockstore-snap-{}", std::process::id()));
        let b = BlockStore::open(&dir).unwrap();
        b.create("vol-1", 1).unwrap();
        write(&b, "vol-1", 1, 0);
        b.snapshot("vol-1", "snap-1", 1).unwrap();
        write(&b, "vol-1", 2, 1);
        b.snapshot("vol-1", "snap-2", 1).unwrap();
        write(&b, "vol-1", 3, 2);
        // Incremental: the second layer holds about one MiB, not the first's data again.
        assert!(std::fs::metadata(b.path("snap-2")).unwrap().len() < 3 << 20);
        b.restore("vol-2", "snap-1", 1).unwrap();
        assert!(reads(&b, "vol-2", 1, 0) && reads(&b, "vol-2", 0, 1));
        // A second restore of the same snapshot comes from the same template, and is a file
        // of its own: writes to one don't show in the other.
        b.restore("vol-2b", "snap-1", 1).unwrap();
        write(&b, "vol-2b", 7, 0);
        assert!(reads(&b, "vol-2b", 7, 0) && reads(&b, "vol-2", 1, 0));
        b.delete("vol-2b").unwrap();
        // A root volume's file-system layer goes with its snapshots and restores.
        std::fs::create_dir_all(b.root_data("vol-3r").join("upper/etc")).unwrap();
        std::fs::write(b.root_data("vol-3r").join("upper/etc/marker"), "m").unwrap();
        b.create("vol-3r", 1).unwrap();
        b.snapshot("vol-3r", "snap-3r", 1).unwrap();
        std::fs::write(b.root_data("vol-3r").join("upper/etc/marker"), "later").unwrap();
        b.restore("vol-4r", "snap-3r", 1).unwrap();
        assert_eq!(
            std::fs::read_to_string(b.root_data("vol-4r").join("upper/etc/marker")).unwrap(),
            "m"
        );
        b.delete("vol-4r").unwrap();
        assert!(!b.root_data("vol-4r").exists());
        b.restore("vol-3", "snap-2", 2).unwrap();
        assert!(reads(&b, "vol-3", 1, 0) && reads(&b, "vol-3", 2, 1));
        assert_eq!(b.size_bytes("vol-3").unwrap(), 2 * GIB);
        // Delete the middle snapshot: its children move onto its parent, keeping their bytes.
        b.rebase("vol-1", Some("snap-1")).unwrap();
        b.rebase("vol-3", Some("snap-1")).unwrap();
        b.delete("snap-2").unwrap();
        assert!(reads(&b, "vol-1", 1, 0) && reads(&b, "vol-1", 2, 1) && reads(&b, "vol-1", 3, 2));
        assert!(reads(&b, "vol-3", 2, 1));
        // A standalone copy of a restored volume reads the same bytes.
        b.rebase("vol-2", None).unwrap();
        assert!(reads(&b, "vol-2", 1, 0));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
