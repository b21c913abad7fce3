//! Empty images made ahead of need, so that a launch of a hundred instances or a burst of
//! CreateVolume calls does not wait for the file system to allocate an inode per volume.
//!
//! Making a file costs the kernel an inode and a journal entry (tens of microseconds on
//! tmpfs, up to a hundred on ext4); renaming one that exists costs a few. The pool keeps, per
//! (backing layer, size) in recent use, a stock of files in `<volumes>/.pool/` that are
//! byte for byte what [`super::BlockStore`] would have written (copies of the same
//! template), and a thread of its own tops the stock up after each take. A
//! take that finds the stock empty makes its file directly, as before, and doubles the
//! stock kept for that kind (up to [`MAX_STOCK`]), so a server that launches in hundreds
//! keeps hundreds ready while one that makes a volume now and then keeps a few.
//!
//! The filler makes each batch of files in a directory of its own and hands the batch out
//! only once it is complete: on ext4 a file created in a directory holds that directory's
//! lock while its inode is allocated, and renames out of the same directory would queue
//! behind it (measured: 100 renames went from 0.8 ms to 9 ms beside a creating thread).
//!
//! The pool holds nothing durable: it is emptied when the store opens and on reset, and a
//! kind's stock goes with its backing layer.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, Weak};

/// (backing layer, size in bytes): what makes two empty images identical.
pub(crate) type Kind = (Option<String>, u64);

/// The first stock kept for a kind once it is used.
const FIRST_STOCK: usize = 16;
/// The most files kept for one kind.
pub(crate) const MAX_STOCK: usize = 256;
/// The most files the filler makes before it hands them out.
const BATCH: usize = 64;
/// The most kinds kept; the least recently used goes first.
const MAX_KINDS: usize = 8;

#[derive(Default)]
struct Stock {
    /// Ready files, each with the batch it was made in.
    files: Vec<(u64, PathBuf)>,
    /// How many files to keep.
    want: usize,
    /// When it was last taken from (a counter, for least-recently-used eviction).
    used: u64,
}

#[derive(Default)]
struct State {
    kinds: HashMap<Kind, Stock>,
    clock: u64,
    /// Bumped by a purge, so files made before it are not handed out after it.
    generation: u64,
    /// Files not yet taken, per batch directory.
    batches: HashMap<u64, usize>,
    /// Batch directories whose files are all gone, for the filler to remove.
    drained: Vec<u64>,
    /// Whether the filler thread runs.
    filling: bool,
}

impl State {
    /// One file of `batch` is gone.
    fn gone(&mut self, batch: u64) {
        if let Some(n) = self.batches.get_mut(&batch) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.batches.remove(&batch);
                self.drained.push(batch);
            }
        }
    }

    /// Removes stocks from the pool: their files' paths, each counted gone.
    fn drop_stocks(&mut self, kinds: &[Kind]) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for k in kinds {
            for (b, f) in self.kinds.remove(k).map(|s| s.files).unwrap_or_default() {
                self.gone(b);
                out.push(f);
            }
        }
        out
    }
}

/// Makes one empty image of a kind at a path (the store's template copy).
pub(crate) type Maker = Arc<dyn Fn(&Path, &Kind) -> std::io::Result<()> + Send + Sync>;

pub(crate) struct Pool {
    dir: PathBuf,
    state: Mutex<State>,
    wake: Condvar,
    make: Maker,
}

/// A batch the filler is to make.
struct Job {
    kind: Kind,
    count: usize,
    generation: u64,
    batch: u64,
}

impl Pool {
    /// A pool in `dir`, emptied of whatever an earlier run left there.
    pub(crate) fn open(dir: PathBuf, make: Maker) -> std::io::Result<Arc<Pool>> {
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        std::fs::create_dir_all(&dir)?;
        Ok(Arc::new(Pool {
            dir,
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            make,
        }))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn batch_dir(&self, batch: u64) -> PathBuf {
        self.dir.join(batch.to_string())
    }

    /// Moves a ready file of `kind` to `dest` (which must not exist); false when none is
    /// ready, and then the stock kept for the kind grows. Either way the filler is woken.
    pub(crate) fn take(self: &Arc<Self>, kind: &Kind, dest: &Path) -> bool {
        let mut st = self.lock();
        st.clock += 1;
        let now = st.clock;
        if !st.kinds.contains_key(kind) && st.kinds.len() >= MAX_KINDS {
            let oldest = st
                .kinds
                .iter()
                .min_by_key(|(_, s)| s.used)
                .map(|(k, _)| k.clone());
            let gone = st.drop_stocks(&oldest.into_iter().collect::<Vec<_>>());
            remove_all(&gone);
        }
        let stock = st.kinds.entry(kind.clone()).or_default();
        stock.used = now;
        let file = stock.files.pop();
        if file.is_none() {
            stock.want = (stock.want * 2).clamp(FIRST_STOCK, MAX_STOCK);
        }
        if let Some((b, _)) = &file {
            st.gone(*b);
        }
        self.start_filler(&mut st);
        drop(st);
        self.wake.notify_one();
        let Some((_, file)) = file else {
            return false;
        };
        // Never over a file already at `dest`: a new volume replaces nothing.
        let moved = rename_new(&file, dest);
        if moved.is_err() {
            let _ = std::fs::remove_file(&file);
        }
        moved.is_ok()
    }

    /// Drops every kind stacked on `layer` (it is being deleted).
    pub(crate) fn forget_layer(&self, layer: &str) {
        let gone = {
            let mut st = self.lock();
            st.generation += 1;
            let kinds: Vec<Kind> = st
                .kinds
                .keys()
                .filter(|k| k.0.as_deref() == Some(layer))
                .cloned()
                .collect();
            st.drop_stocks(&kinds)
        };
        remove_all(&gone);
    }

    /// Empties the pool (reset).
    pub(crate) fn clear(&self) {
        let gone = {
            let mut st = self.lock();
            st.generation += 1;
            let kinds: Vec<Kind> = st.kinds.keys().cloned().collect();
            st.drop_stocks(&kinds)
        };
        remove_all(&gone);
    }

    /// How many files are ready for `kind` (tests).
    #[cfg(test)]
    pub(crate) fn ready(&self, kind: &Kind) -> usize {
        self.lock().kinds.get(kind).map_or(0, |s| s.files.len())
    }

    /// Waits (a generous bound, not a timing assertion) until `kind` has `n` files ready
    /// (tests).
    #[cfg(test)]
    pub(crate) fn wait_ready(&self, kind: &Kind, n: usize) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while self.ready(kind) < n {
            assert!(
                std::time::Instant::now() < deadline,
                "the pool never filled"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    fn start_filler(self: &Arc<Self>, st: &mut State) {
        if st.filling {
            return;
        }
        let weak = Arc::downgrade(self);
        let started = std::thread::Builder::new()
            .name("kumo-volume-pool".into())
            .spawn(move || fill(weak));
        match started {
            Ok(_) => st.filling = true,
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the volume pool's filler; volumes are made on demand")
            }
        }
    }

    /// The next batch to make: for the most recently used kind short of its stock.
    fn next_job(&self, st: &mut State) -> Option<Job> {
        let (kind, short) = st
            .kinds
            .iter()
            .filter(|(_, s)| s.files.len() < s.want)
            .max_by_key(|(_, s)| s.used)
            .map(|(k, s)| (k.clone(), s.want - s.files.len()))?;
        st.clock += 1;
        Some(Job {
            kind,
            count: short.min(BATCH),
            generation: st.generation,
            batch: st.clock,
        })
    }

    /// Makes a batch's files in a directory of their own; the paths made (all of them, or
    /// none when one failed).
    fn make_batch(&self, job: &Job) -> Vec<PathBuf> {
        let dir = self.batch_dir(job.batch);
        let mut made = Vec::with_capacity(job.count);
        let result = std::fs::create_dir(&dir).and_then(|_| {
            for i in 0..job.count {
                let path = dir.join(format!("{i}.qcow2"));
                (self.make)(&path, &job.kind)?;
                made.push(path);
            }
            Ok(())
        });
        if let Err(e) = result {
            tracing::warn!(error = %e, "cannot make pooled volume files; volumes are made on demand");
            let _ = std::fs::remove_dir_all(&dir);
            return Vec::new();
        }
        made
    }

    /// Hands a made batch out, unless the pool was purged or the kind dropped meanwhile.
    fn publish(&self, job: Job, made: Vec<PathBuf>) {
        let mut st = self.lock();
        let current = st.generation == job.generation;
        let Some(stock) = st.kinds.get_mut(&job.kind).filter(|_| current) else {
            drop(st);
            let _ = std::fs::remove_dir_all(self.batch_dir(job.batch));
            return;
        };
        if made.is_empty() {
            // Not again for this kind until a take asks.
            stock.want = stock.files.len();
            return;
        }
        let n = made.len();
        stock.files.extend(made.into_iter().map(|f| (job.batch, f)));
        st.batches.insert(job.batch, n);
    }

    /// Removes the directories of batches that are all taken.
    fn sweep(&self) {
        let drained = std::mem::take(&mut self.lock().drained);
        for b in drained {
            let _ = std::fs::remove_dir(self.batch_dir(b));
        }
    }
}

/// The filler: makes batches while some kind is short, and sleeps otherwise. It ends once
/// the store that owns the pool is gone.
fn fill(pool: Weak<Pool>) {
    loop {
        let Some(p) = pool.upgrade() else {
            return;
        };
        p.sweep();
        let job = {
            let mut st = p.lock();
            match p.next_job(&mut st) {
                Some(j) => Some(j),
                None => {
                    // Wakes now and then to check whether the store is still there.
                    let (mut st, _) = p
                        .wake
                        .wait_timeout(st, std::time::Duration::from_secs(1))
                        .unwrap_or_else(|e| e.into_inner());
                    p.next_job(&mut st)
                }
            }
        };
        if let Some(job) = job {
            let made = p.make_batch(&job);
            p.publish(job, made);
        }
    }
}

fn remove_all(files: &[PathBuf]) {
    for f in files {
        let _ = std::fs::remove_file(f);
    }
}

/// `rename(2)` that fails rather than replace `to` (`RENAME_NOREPLACE`).
fn rename_new(from: &Path, to: &Path) -> std::io::Result<()> {
    use nix::fcntl::{renameat2, RenameFlags, AT_FDCWD};
    renameat2(AT_FDCWD, from, AT_FDCWD, to, RenameFlags::RENAME_NOREPLACE)
        .map_err(std::io::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(name: &str) -> (PathBuf, Arc<Pool>) {
        let dir = std::env::temp_dir().join(format!("kumo-pool-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let make: Maker =
            Arc::new(|path, kind| std::fs::write(path, format!("{:?}/{}", kind.0, kind.1)));
        let p = Pool::open(dir.join(".pool"), make).unwrap();
        (dir, p)
    }

    #[test]
    fn a_miss_starts_a_stock_that_takes_then_serve() {
        let (dir, p) = pool("miss");
        let kind: Kind = (Some("snap-1".into()), 8 << 30);
        assert!(!p.take(&kind, &dir.join("vol-1.qcow2")));
        assert!(!dir.join("vol-1.qcow2").exists());
        p.wait_ready(&kind, FIRST_STOCK);
        assert!(p.take(&kind, &dir.join("vol-2.qcow2")));
        // The file is the maker's, for this kind.
        assert_eq!(
            std::fs::read_to_string(dir.join("vol-2.qcow2")).unwrap(),
            "Some(\"snap-1\")/8589934592"
        );
        // The take woke the filler, which may already have replaced the file taken (so the
        // count right after it is FIRST_STOCK - 1 or FIRST_STOCK, a race): it tops the stock
        // back up, and never over it.
        p.wait_ready(&kind, FIRST_STOCK);
        assert_eq!(p.ready(&kind), FIRST_STOCK);
        // Another kind has a stock of its own.
        let other: Kind = (None, 1 << 30);
        assert!(!p.take(&other, &dir.join("vol-3.qcow2")));
        done(dir, p);
    }

    #[test]
    fn a_take_never_replaces_a_file() {
        let (dir, p) = pool("noreplace");
        let kind: Kind = (None, 1 << 30);
        p.take(&kind, &dir.join("x"));
        p.wait_ready(&kind, 1);
        std::fs::write(dir.join("vol-1.qcow2"), "mine").unwrap();
        assert!(!p.take(&kind, &dir.join("vol-1.qcow2")));
        assert_eq!(
            std::fs::read_to_string(dir.join("vol-1.qcow2")).unwrap(),
            "mine"
        );
        done(dir, p);
    }

    #[test]
    fn misses_grow_the_stock_up_to_its_bound() {
        let (dir, p) = pool("grow");
        let kind: Kind = (None, 2 << 30);
        // Each take that finds the stock empty doubles it.
        let mut n = 0;
        let mut wanted = 0;
        while wanted < MAX_STOCK {
            n += 1;
            // Drain whatever is ready, then miss once.
            while p.take(&kind, &dir.join(format!("v{n}-{}", p.ready(&kind)))) {}
            wanted = p.lock().kinds[&kind].want;
            p.wait_ready(&kind, wanted);
        }
        assert_eq!(p.lock().kinds[&kind].want, MAX_STOCK);
        assert_eq!(p.ready(&kind), MAX_STOCK);
        done(dir, p);
    }

    #[test]
    fn a_deleted_layer_and_a_reset_take_their_files() {
        let (dir, p) = pool("forget");
        let on_snap: Kind = (Some("snap-9".into()), 1 << 30);
        let blank: Kind = (None, 1 << 30);
        p.take(&on_snap, &dir.join("a"));
        p.take(&blank, &dir.join("b"));
        p.wait_ready(&on_snap, FIRST_STOCK);
        p.wait_ready(&blank, FIRST_STOCK);
        let files = |d: &Path| walk(d).len();
        assert_eq!(files(&dir.join(".pool")), 2 * FIRST_STOCK);
        p.forget_layer("snap-9");
        assert_eq!(p.ready(&on_snap), 0);
        assert_eq!(files(&dir.join(".pool")), FIRST_STOCK);
        p.clear();
        assert_eq!(files(&dir.join(".pool")), 0);
        // A later take starts again from nothing.
        assert!(!p.take(&blank, &dir.join("c")));
        done(dir, p);
    }

    /// Removes a test's directory once its filler has let go of it.
    fn done(dir: PathBuf, p: Arc<Pool>) {
        drop(p);
        for _ in 0..100 {
            if std::fs::remove_dir_all(&dir).is_ok() || !dir.exists() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    fn walk(d: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
        out
    }
}
