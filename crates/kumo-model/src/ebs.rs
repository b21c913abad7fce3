//! EBS volume types and their limits, as the EC2 API documents them (sizes in GiB, IOPS,
//! throughput in MiB/s), with AWS's error texts.

/// A refused volume configuration: (AWS error code, message).
pub type EbsError = (&'static str, String);

/// What a volume of a type accepts.
struct Limits {
    min_size: i32,
    max_size: i32,
    /// (min, max, max per GiB) when IOPS are provisioned.
    iops: Option<(i32, i32, i32)>,
    iops_required: bool,
}

/// Whether a volume type takes provisioned IOPS (gp3, io1, io2). gp2's IOPS follow from its
/// size, and st1, sc1 and standard have none to set.
pub fn provisions_iops(t: &str) -> bool {
    limits(t).is_some_and(|l| l.iops.is_some())
}

fn limits(t: &str) -> Option<Limits> {
    Some(match t {
        "gp2" => Limits {
            min_size: 1,
            max_size: 16384,
            iops: None,
            iops_required: false,
        },
        "gp3" => Limits {
            min_size: 1,
            max_size: 65536,
            iops: Some((3000, 80000, 500)),
            iops_required: false,
        },
        "io1" => Limits {
            min_size: 4,
            max_size: 16384,
            iops: Some((100, 64000, 50)),
            iops_required: true,
        },
        "io2" => Limits {
            min_size: 4,
            max_size: 65536,
            iops: Some((100, 256000, 1000)),
            iops_required: true,
        },
        "st1" | "sc1" => Limits {
            min_size: 125,
            max_size: 16384,
            iops: None,
            iops_required: false,
        },
        "standard" => Limits {
            min_size: 1,
            max_size: 1024,
            iops: None,
            iops_required: false,
        },
        _ => return None,
    })
}

/// The IOPS and throughput a volume ends up with: checks a configuration and fills in what
/// AWS derives (gp2's 3 IOPS per GiB between 100 and 16,000; gp3's 3,000 IOPS and 125 MiB/s).
pub fn configure(
    t: &str,
    size: i32,
    iops: Option<i32>,
    throughput: Option<i32>,
) -> Result<(Option<i32>, Option<i32>), EbsError> {
    let l = limits(t).ok_or_else(|| {
        (
            "InvalidParameterValue",
            format!("Value ({t}) for parameter volumeType is invalid."),
        )
    })?;
    if size < l.min_size {
        return Err((
            "InvalidParameterValue",
            format!("The volume size is invalid for {t} volumes: {size} GiB. {t} volumes must be at least {} GiB in size. Please specify a volume size above the minimum limit", l.min_size),
        ));
    }
    if size > l.max_size {
        return Err((
            "InvalidParameterValue",
            format!(
                "Volume of {size}GiB is too large for volume type {t}; maximum is {}GiB",
                l.max_size
            ),
        ));
    }
    if throughput.is_some() && t != "gp3" {
        return Err((
            "InvalidParameterCombination",
            "throughput can only be specified for volumeType gp3.".into(),
        ));
    }
    let iops = match (l.iops, iops) {
        (None, Some(_)) => {
            return Err((
                "InvalidParameterCombination",
                format!("The parameter iops is not supported for {t} volumes."),
            ))
        }
        (None, None) if t == "gp2" => Some((3 * size).clamp(100, 16000)),
        (None, None) => None,
        (Some(_), None) if l.iops_required => {
            return Err((
                "InvalidParameterCombination",
                format!("The parameter iops must be specified for {t} volumes."),
            ));
        }
        (Some((min, _, _)), None) => Some(min),
        (Some((min, max, per_gib)), Some(n)) => {
            if n < min {
                return Err((
                    "InvalidParameterValue",
                    format!("Volume iops of {n} is too low; minimum is {min}."),
                ));
            }
            if n > max {
                return Err((
                    "InvalidParameterValue",
                    format!("Volume iops of {n} is too high; maximum is {max}."),
                ));
            }
            // gp3's free 3,000 IOPS apply at any size.
            let ratio = n as f64 / size as f64;
            if ratio > per_gib as f64 && !(t == "gp3" && n <= 3000) {
                return Err((
                    "InvalidParameterValue",
                    format!(
                        "Iops to volume size ratio of {ratio:.6} is too high; maximum is {per_gib}"
                    ),
                ));
            }
            Some(n)
        }
    };
    let throughput = if t == "gp3" {
        let tp = throughput.unwrap_or(125);
        if tp < 125 {
            return Err((
                "InvalidParameterValue",
                format!("Volume throughput of {tp} is too low; minimum is 125."),
            ));
        }
        if tp > 2000 {
            return Err((
                "InvalidParameterValue",
                format!("Volume throughput of {tp} is too high; maximum is 2000."),
            ));
        }
        let per_iops = tp as f64 / iops.unwrap_or(3000) as f64;
        if per_iops > 0.25 {
            return Err((
                "InvalidParameterValue",
                format!("Throughput (MiBps) to iops ratio of {per_iops:.6} is too high; maximum is 0.250000 MiBps per iops"),
            ));
        }
        Some(tp)
    } else {
        None
    };
    Ok((iops, throughput))
}

/// Whether a volume type allows Multi-Attach.
pub fn multi_attach_allowed(t: &str) -> bool {
    t == "io1" || t == "io2"
}

/// Device names EBS volumes attach under: `/dev/sd[b-z]`, `/dev/xvd[b-z]` (and two-letter
/// `xvd` names), or the root names `/dev/sda1` and `/dev/xvda`.
pub fn valid_device(d: &str) -> bool {
    let name = d.strip_prefix("/dev/").unwrap_or(d);
    let letters = |s: &str, n: std::ops::RangeInclusive<usize>| {
        n.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_lowercase())
    };
    match name {
        "sda1" => true,
        _ if name.starts_with("xvd") => letters(&name[3..], 1..=2),
        _ if name.starts_with("sd") => letters(&name[2..], 1..=1),
        _ => false,
    }
}

const MIB: u64 = 1 << 20;
const TIB_GIB: u64 = 1024;

/// The performance a volume delivers, as AWS's EBS volume-type table gives it: a sustained
/// rate of I/O operations and of bytes, and for the types that burst, a burst rate with the
/// time a full bucket lasts at it. One operation counts up to `io_size` bytes (256 KiB on
/// SSD types, 1 MiB on HDD types); a larger one counts as several, as EBS counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Performance {
    pub iops: u64,
    /// (burst IOPS, seconds a full bucket lasts at that rate).
    pub iops_burst: Option<(u64, u64)>,
    pub bytes_per_sec: u64,
    /// (burst bytes per second, seconds a full bucket lasts at that rate).
    pub bytes_burst: Option<(u64, u64)>,
    pub io_size: u64,
}

/// A volume's burst bucket as AWS describes it: it holds at most `capacity`, earns
/// `earn_per_sec` (the baseline rate), and I/O spends it (gp2: a credit per operation of up to
/// 256 KiB; st1 and sc1: the bytes moved). `BurstBalance` is its level in percent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub capacity: f64,
    pub earn_per_sec: f64,
    /// Spent in bytes (st1, sc1) rather than in operations (gp2).
    pub by_bytes: bool,
    pub io_size: f64,
}

impl Bucket {
    /// The level after `secs` in which the device did `ops` operations moving `bytes`.
    pub fn run(&self, level: f64, secs: f64, ops: f64, bytes: f64) -> f64 {
        let spent = if self.by_bytes {
            bytes
        } else {
            // An operation larger than 256 KiB counts as several.
            ops.max(bytes / self.io_size)
        };
        (level + self.earn_per_sec * secs - spent).clamp(0.0, self.capacity)
    }
}

impl Performance {
    /// The burst bucket of a volume that has one: gp2 below 3,000 baseline IOPS, st1 and
    /// sc1 whose burst exceeds their baseline.
    pub fn bucket(&self) -> Option<Bucket> {
        if let Some((_, _)) = self.iops_burst {
            return Some(Bucket {
                capacity: GP2_CREDITS as f64,
                earn_per_sec: self.iops as f64,
                by_bytes: false,
                io_size: self.io_size as f64,
            });
        }
        let (burst, secs) = self.bytes_burst?;
        Some(Bucket {
            capacity: (burst * secs) as f64,
            earn_per_sec: self.bytes_per_sec as f64,
            by_bytes: true,
            io_size: self.io_size as f64,
        })
    }
}

/// gp2's I/O credit bucket: 5.4 million credits, full when the volume is made.
pub const GP2_CREDITS: u64 = 5_400_000;

/// What a volume of type `t`, `size` GiB, with the IOPS and throughput (MiB/s) its record
/// holds (as [`configure`] settled them) delivers:
/// - gp2: 3 IOPS per GiB (100 to 16,000), bursting to 3,000 on its credit bucket while the
///   baseline is below that; 128 MiB/s up to 170 GiB, 250 MiB/s above;
/// - gp3: the provisioned IOPS and throughput;
/// - io1 and io2: the provisioned IOPS, and 256 KiB per operation of throughput up to
///   1,000 MiB/s (io1) or 4,000 MiB/s (io2);
/// - st1: 40 MiB/s per TiB, bursting to 250 MiB/s per TiB, at most 500 MiB/s and 500 IOPS;
///   sc1: 12 MiB/s per TiB, bursting to 80 MiB/s per TiB, at most 250 MiB/s and 250 IOPS;
///   each with a burst bucket of 1 TiB per TiB of size;
/// - standard (magnetic): about 100 IOPS; Kumo holds it at 100 IOPS and 90 MiB/s.
pub fn performance(t: &str, size: i32, iops: Option<i32>, throughput: Option<i32>) -> Performance {
    let size = size.max(1) as u64;
    let provisioned = iops.unwrap_or(0).max(0) as u64;
    let ssd = |iops: u64, bytes_per_sec: u64, iops_burst| Performance {
        iops,
        iops_burst,
        bytes_per_sec,
        bytes_burst: None,
        io_size: 256 * 1024,
    };
    let hdd = |per_tib: u64, burst_per_tib: u64, cap: u64, iops: u64| {
        let base = (per_tib * size * MIB / TIB_GIB).min(cap * MIB);
        let burst = (burst_per_tib * size * MIB / TIB_GIB).min(cap * MIB);
        // The bucket holds 1 TiB per TiB of size (the volume's size in bytes); it lasts this
        // long at the burst rate.
        let bucket = size * 1024 * MIB;
        Performance {
            iops,
            iops_burst: None,
            bytes_per_sec: base,
            bytes_burst: (burst > base).then(|| (burst, bucket / burst.max(1))),
            io_size: MIB,
        }
    };
    match t {
        "gp2" => {
            let base = (3 * size).clamp(100, 16_000);
            let burst = (base < 3_000).then_some((3_000, GP2_CREDITS / 3_000));
            let mibs = if size <= 170 { 128 } else { 250 };
            ssd(base, mibs * MIB, burst)
        }
        "gp3" => ssd(
            provisioned.max(3_000),
            throughput.unwrap_or(125).max(125) as u64 * MIB,
            None,
        ),
        "io1" => ssd(
            provisioned,
            (provisioned * 256 * 1024).min(1_000 * MIB),
            None,
        ),
        "io2" => ssd(
            provisioned,
            (provisioned * 256 * 1024).min(4_000 * MIB),
            None,
        ),
        "st1" => hdd(40, 250, 500, 500),
        "sc1" => hdd(12, 80, 250, 250),
        _ => ssd(100, 90 * MIB, None),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn burst_buckets_spend_and_earn() {
        // gp2 of 100 GiB: 300 IOPS baseline, 5.4 million credits.
        let b = super::performance("gp2", 100, None, None).bucket().unwrap();
        assert_eq!((b.capacity, b.earn_per_sec), (5_400_000.0, 300.0));
        // A minute at 3,000 IOPS spends 2,700 a second net.
        let after = b.run(b.capacity, 60.0, 180_000.0, 180_000.0 * 4096.0);
        assert_eq!(after, 5_400_000.0 - 162_000.0);
        // 1 MiB operations count as four.
        assert_eq!(b.run(1000.0, 0.0, 10.0, 10.0 * 1048576.0), 960.0);
        // Idle, it refills to the cap and no further.
        assert_eq!(b.run(b.capacity - 10.0, 60.0, 0.0, 0.0), b.capacity);
        // gp2 at 1 TiB and over, gp3 and io1 have none; st1 spends bytes.
        assert!(super::performance("gp2", 1000, None, None)
            .bucket()
            .is_none());
        assert!(super::performance("gp3", 100, Some(3000), Some(125))
            .bucket()
            .is_none());
        let st1 = super::performance("st1", 1024, None, None)
            .bucket()
            .unwrap();
        assert!(st1.by_bytes && st1.earn_per_sec == 40.0 * 1048576.0);
        assert_eq!(st1.run(0.0, 1.0, 1.0, 1048576.0), 39.0 * 1048576.0);
    }

    #[test]
    fn performance_follows_the_volume_type_table() {
        // gp2: 3 IOPS per GiB from 100, a 5.4 million credit bucket at 3,000 IOPS.
        let small = performance("gp2", 8, Some(100), None);
        assert_eq!((small.iops, small.iops_burst), (100, Some((3_000, 1_800))));
        assert_eq!(small.bytes_per_sec, 128 * MIB);
        let big = performance("gp2", 2_000, Some(6_000), None);
        assert_eq!(
            (big.iops, big.iops_burst, big.bytes_per_sec),
            (6_000, None, 250 * MIB)
        );
        assert_eq!(performance("gp2", 10_000, None, None).iops, 16_000);
        // gp3 and io1/io2 as provisioned; io1's throughput is 256 KiB per operation.
        let gp3 = performance("gp3", 100, Some(3_000), Some(125));
        assert_eq!(
            (gp3.iops, gp3.bytes_per_sec, gp3.io_size),
            (3_000, 125 * MIB, 256 * 1024)
        );
        let io1 = performance("io1", 10, Some(100), None);
        assert_eq!((io1.iops, io1.bytes_per_sec), (100, 25 * MIB));
        assert_eq!(
            performance("io1", 10_000, Some(64_000), None).bytes_per_sec,
            1_000 * MIB
        );
        // st1: 40 MiB/s per TiB bursting to 250, a bucket of 1 TiB per TiB, 1 MiB operations.
        let st1 = performance("st1", 2_048, None, None);
        assert_eq!(st1.bytes_per_sec, 80 * MIB);
        assert_eq!(st1.bytes_burst, Some((500 * MIB, 2 * 1024 * 1024 / 500)));
        assert_eq!((st1.iops, st1.io_size), (500, MIB));
        let sc1 = performance("sc1", 1_024, None, None);
        assert_eq!(
            (sc1.bytes_per_sec, sc1.bytes_burst.map(|b| b.0)),
            (12 * MIB, Some(80 * MIB))
        );
        assert_eq!(performance("standard", 8, None, None).iops, 100);
    }

    use super::*;

    #[test]
    fn derived_and_checked() {
        assert_eq!(configure("gp2", 1, None, None).unwrap(), (Some(100), None));
        assert_eq!(
            configure("gp2", 100, None, None).unwrap(),
            (Some(300), None)
        );
        assert_eq!(
            configure("gp2", 16384, None, None).unwrap(),
            (Some(16000), None)
        );
        assert_eq!(
            configure("gp3", 1, None, None).unwrap(),
            (Some(3000), Some(125))
        );
        assert_eq!(configure("st1", 500, None, None).unwrap(), (None, None));
        assert_eq!(
            configure("gp2", 10, Some(100), None).unwrap_err().0,
            "InvalidParameterCombination"
        );
        assert_eq!(
            configure("io1", 10, None, None).unwrap_err().1,
            "The parameter iops must be specified for io1 volumes."
        );
        assert_eq!(
            configure("io1", 6, Some(400), None).unwrap_err().1,
            "Iops to volume size ratio of 66.666667 is too high; maximum is 50"
        );
        assert!(configure("gp3", 20, Some(15000), None)
            .unwrap_err()
            .1
            .starts_with("Iops to volume size ratio of 750.000000"));
        assert!(configure("io1", 1, Some(100), None)
            .unwrap_err()
            .1
            .starts_with("The volume size is invalid for io1 volumes: 1 GiB."));
        assert_eq!(
            configure("standard", 2000, None, None).unwrap_err().1,
            "Volume of 2000GiB is too large for volume type standard; maximum is 1024GiB"
        );
        assert_eq!(
            configure("gp2", 10, None, Some(200)).unwrap_err().0,
            "InvalidParameterCombination"
        );
        assert!(configure("gp3", 100, Some(3000), Some(1000))
            .unwrap_err()
            .1
            .starts_with("Throughput (MiBps) to iops ratio of 0.333333"));
        assert_eq!(
            configure("gp3", 100, Some(4000), Some(1000)).unwrap(),
            (Some(4000), Some(1000))
        );
    }

    #[test]
    fn device_names() {
        for ok in [
            "/dev/sdf",
            "/dev/xvdh",
            "xvdh",
            "/dev/xvdba",
            "/dev/sda1",
            "/dev/xvda",
        ] {
            assert!(valid_device(ok), "{ok}");
        }
        for bad in [
            "/dev/sdZZ",
            "/dev/sdi1",
            "/dev/nvme1n1",
            "Disk_D",
            "/dev/sdaa",
            "",
        ] {
            assert!(!valid_device(bad), "{bad}");
        }
    }
}
