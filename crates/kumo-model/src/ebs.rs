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

#[cfg(test)]
mod tests {
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
