#!/usr/bin/env python3
"""Regenerate the kumo-model EC2 data files from moto and botocore.

Python 3.11, standard library only. moto's location comes from `import moto`
(its top-level __init__ is light); botocore's is found with
importlib.util.find_spec, which does not execute botocore.

Usage:  python3 gen_data.py [OUTPUT_DIR]     (default: this script's directory)

Writes regions.tsv, zones.tsv, offerings.tsv and instance_types.json, and
prints a summary (counts, dropped keys, sanity-check warnings) to stdout.
"""

import ast
import collections
import gzip
import importlib.util
import json
import os
import re
import sys

import moto

MOTO_DIR = os.path.dirname(moto.__file__)
MOTO_VERSION = getattr(moto, "__version__", "unknown")
_spec = importlib.util.find_spec("botocore")
if _spec is None or not _spec.submodule_search_locations:
    sys.exit("botocore not found")
BOTOCORE_DIR = list(_spec.submodule_search_locations)[0]
with open(os.path.join(BOTOCORE_DIR, "__init__.py"), encoding="utf-8") as _f:
    _m = re.search(r"^__version__\s*=\s*['\"]([^'\"]+)['\"]", _f.read(), re.M)
BOTOCORE_VERSION = _m.group(1) if _m else "unknown"

AZ_REGIONS_PY = os.path.join(MOTO_DIR, "ec2", "models", "availability_zones_and_regions.py")
OFFERINGS_DIR = os.path.join(MOTO_DIR, "ec2", "resources", "instance_type_offerings")
INSTANCE_TYPES_GZ = os.path.join(MOTO_DIR, "ec2", "resources", "instance_types.json.gz")
ENDPOINTS_JSON = os.path.join(BOTOCORE_DIR, "data", "endpoints.json")
EC2_MODEL_GZ = os.path.join(BOTOCORE_DIR, "data", "ec2", "2016-11-15", "service-2.json.gz")

# Regions launched before 2019-03-20 are enabled by default ("opt-in-not-required");
# every later commercial region is an opt-in region ("not-opted-in" until enabled).
# Source: AWS Account Management Reference Guide, "Enable or disable AWS Regions in
# your account" (manage-acct-regions). NOTE: moto 5.2.1's own list wrongly treats
# af-south-1, ap-southeast-3 and eu-south-1 as enabled by default; we follow AWS.
DEFAULT_ENABLED_REGIONS = {
    "us-east-1", "us-east-2", "us-west-1", "us-west-2",
    "ca-central-1", "sa-east-1",
    "eu-central-1", "eu-west-1", "eu-west-2", "eu-west-3", "eu-north-1",
    "ap-south-1", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3",
    "ap-southeast-1", "ap-southeast-2",
}
# Opt-in regions known at the time of writing; used only as a sanity check so a new
# region appearing in botocore gets flagged for a human to look at.
KNOWN_OPT_IN_REGIONS = {
    "af-south-1", "ap-east-1", "ap-east-2", "ap-south-2", "ap-southeast-3",
    "ap-southeast-4", "ap-southeast-5", "ap-southeast-6", "ap-southeast-7",
    "ca-west-1", "eu-central-2", "eu-south-1", "eu-south-2", "il-central-1",
    "me-central-1", "me-south-1", "mx-central-1",
}

warnings = []


def warn(msg):
    warnings.append(msg)
    print("WARNING:", msg)


def load_gz_json(path):
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return json.load(f)


# --------------------------------------------------------------------------- regions
def commercial_regions():
    """EC2 regions of botocore's 'aws' partition (no fips-*, GovCloud, China, ISO, EUSC)."""
    with open(ENDPOINTS_JSON, encoding="utf-8") as f:
        endpoints = json.load(f)
    part = next(p for p in endpoints["partitions"] if p["partition"] == "aws")
    region_re = re.compile(part["regionRegex"])
    ec2 = part["services"]["ec2"]["endpoints"]
    regions = sorted(
        r for r, v in ec2.items()
        if r in part["regions"] and region_re.match(r) and not v.get("deprecated")
    )
    extra = set(part["regions"]) - set(regions)
    if extra:
        warn(f"aws-partition regions without an EC2 endpoint: {sorted(extra)}")
    for r in regions:
        if r not in DEFAULT_ENABLED_REGIONS and r not in KNOWN_OPT_IN_REGIONS:
            warn(f"region {r} is new to this script; assumed opt-in (not-opted-in)")
    return regions


def region_descriptions():
    """Each region's name as AWS writes it (`US East (N. Virginia)`), from endpoints.json."""
    with open(ENDPOINTS_JSON, encoding="utf-8") as f:
        endpoints = json.load(f)
    part = next(p for p in endpoints["partitions"] if p["partition"] == "aws")
    return {r: v.get("description", "") for r, v in part["regions"].items()}


# --------------------------------------------------------------------------- zones
def moto_explicit_zones():
    """Parse RegionsAndZonesBackend.zones = {...} from moto's source with ast."""
    with open(AZ_REGIONS_PY, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "RegionsAndZonesBackend")
    for stmt in cls.body:
        if (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1
                and isinstance(stmt.targets[0], ast.Name) and stmt.targets[0].id == "zones"):
            out = {}
            for k, v in zip(stmt.value.keys, stmt.value.values):
                region = ast.literal_eval(k)
                zones = []
                for call in v.elts:
                    kw = {a.arg: ast.literal_eval(a.value) for a in call.keywords}
                    zones.append((kw["region_name"], kw["name"], kw["zone_id"],
                                  kw.get("zone_type", "availability-zone")))
                out[region] = zones
            return out
    raise SystemExit("could not find zones dict in " + AZ_REGIONS_PY)


def moto_regular_zones(name):
    """Same algorithm as moto's 'Regularized region->zone mapping' fallback."""
    parts = name.split("-")
    shorthand = "usg" if name.startswith("us-gov") else parts[0]
    for cardinal in ["north", "south", "central", "east", "west"]:
        if cardinal in name:
            shorthand += cardinal[0]
    shorthand += parts[-1]
    return [(name, f"{name}{s}", f"{shorthand}-az{i}", "availability-zone")
            for i, s in enumerate("abc", 1)]


def zones_for(regions):
    explicit = moto_explicit_zones()
    out = {}
    for r in regions:
        zs = explicit.get(r) or moto_regular_zones(r)
        out[r] = [(n, zid) for (rn, n, zid, zt) in zs if zt == "availability-zone" and rn == r]
    return out, explicit


def zone_id_mismatches(zones):
    """Zones whose id differs from the one implied by moto's offering files, where the
    availability-zone and availability-zone-id files can be matched by identical type sets."""
    out = []
    for r, zs in zones.items():
        fa = os.path.join(OFFERINGS_DIR, "availability-zone", r + ".json.gz")
        fb = os.path.join(OFFERINGS_DIR, "availability-zone-id", r + ".json.gz")
        if not (os.path.exists(fa) and os.path.exists(fb)):
            continue
        by_name, by_id = collections.defaultdict(set), collections.defaultdict(set)
        for rec in load_gz_json(fa):
            by_name[rec["Location"]].add(rec["InstanceType"])
        for rec in load_gz_json(fb):
            by_id[rec["Location"]].add(rec["InstanceType"])
        for n, zid in zs:
            cands = [i for i, s in by_id.items() if s == by_name.get(n)]
            if cands and zid not in cands:
                out.append((r, f"{n}:{zid}!={'/'.join(sorted(cands))}"))
    for r, m in out:
        warn(f"zone id mismatch vs moto offering data: {m}")
    return out


# --------------------------------------------------------------------------- shapes
def filter_to_shape(value, shape_name, shapes, path, dropped):
    shape = shapes[shape_name]
    t = shape["type"]
    if t == "structure":
        if not isinstance(value, dict):
            warn(f"{path}: expected object for {shape_name}, got {type(value).__name__}")
            return value
        members = shape["members"]
        out = {}
        for k, v in value.items():
            if k not in members:
                dropped[f"{path}.{k}" if path else k] += 1
                continue
            out[k] = filter_to_shape(v, members[k]["shape"], shapes, f"{path}.{k}" if path else k, dropped)
        return out
    if t == "list":
        if not isinstance(value, list):
            warn(f"{path}: expected list for {shape_name}, got {type(value).__name__}")
            return value
        return [filter_to_shape(v, shape["member"]["shape"], shapes, path + "[]", dropped) for v in value]
    if t == "map":
        return {k: filter_to_shape(v, shape["value"]["shape"], shapes, path + "{}", dropped)
                for k, v in value.items()}
    return value  # scalar


# --------------------------------------------------------------------------- main
def main():
    outdir = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    os.makedirs(outdir, exist_ok=True)
    src = f"moto {MOTO_VERSION} (Apache-2.0), botocore {BOTOCORE_VERSION}; generated by gen_data.py"

    # ---- regions
    regions = commercial_regions()
    described = region_descriptions()
    lines = [f"# region\topt_in_status\tdescription  -- AWS commercial ('aws' partition) EC2 regions "
             f"from botocore {BOTOCORE_VERSION} endpoints.json (with its descriptions); opt-in per AWS "
             f"docs (launched after 2019-03-20 => not-opted-in). {len(regions)} regions. {src}"]
    for r in regions:
        opt_in = 'opt-in-not-required' if r in DEFAULT_ENABLED_REGIONS else 'not-opted-in'
        lines.append(f"{r}\t{opt_in}\t{described.get(r, '')}")
    write(outdir, "regions.tsv", lines)

    # ---- zones
    zones, explicit = zones_for(regions)
    nz = sum(len(v) for v in zones.values())
    regular = [r for r in regions if r not in explicit]
    lines = [f"# region\tzone_name\tzone_id  -- standard availability zones (zoneType availability-zone) "
             f"as moto {MOTO_VERSION} ec2/models/availability_zones_and_regions.py reports them: explicit "
             f"table where moto has one, else moto's regularized a/b/c -> <short>-az1/2/3 fallback. "
             f"{nz} zones in {len(regions)} regions. {src}"]
    mism = zone_id_mismatches(zones)
    lines.append(
        f"# note: moto's availability-zone-id offering files imply a different name->id mapping for "
        f"{len(mism)} zones ({' '.join(sorted({r for r, _ in mism})) or 'none'}); this file keeps the "
        f"mapping moto's DescribeAvailabilityZones returns (AZ name->id mapping is per-account in AWS)")
    for r in regions:
        for n, zid in zones[r]:
            lines.append(f"{r}\t{n}\t{zid}")
    write(outdir, "zones.tsv", lines)

    # ---- instance types
    catalog = load_gz_json(INSTANCE_TYPES_GZ)
    if isinstance(catalog, dict):
        items = list(catalog.values())
    else:
        items = list(catalog)
    model = load_gz_json(EC2_MODEL_GZ)
    shapes = model["shapes"]
    dropped = collections.Counter()
    filtered = []
    for it in items:
        filtered.append(filter_to_shape(it, "InstanceTypeInfo", shapes, "", dropped))
    filtered.sort(key=lambda d: d["InstanceType"])
    names = [d["InstanceType"] for d in filtered]
    if len(set(names)) != len(names):
        warn("duplicate InstanceType entries in catalog")
    known_types = set(names)
    valid_enum = set(shapes["InstanceType"].get("enum", []))
    not_in_enum = sorted(known_types - valid_enum)
    if not_in_enum:
        warn(f"{len(not_in_enum)} catalog types are not in botocore's InstanceType enum: {not_in_enum}")
    with open(os.path.join(outdir, "instance_types.json"), "w", encoding="utf-8") as f:
        json.dump(filtered, f, separators=(",", ":"), ensure_ascii=False)
        f.write("\n")

    # ---- offerings
    az_dir = os.path.join(OFFERINGS_DIR, "availability-zone")
    have = {fn[: -len(".json.gz")] for fn in os.listdir(az_dir) if fn.endswith(".json.gz")}
    missing = [r for r in regions if r not in have]
    ignored_files = sorted(have - set(regions))
    unknown = collections.Counter()
    off_lines = []
    n_pairs = 0
    for r in regions:
        if r not in have:
            continue
        per_zone = collections.defaultdict(set)
        for rec in load_gz_json(os.path.join(az_dir, r + ".json.gz")):
            per_zone[rec["Location"]].add(rec["InstanceType"])
        zone_names = [n for n, _ in zones[r]]
        for loc in sorted(per_zone):
            if loc not in zone_names:
                warn(f"offerings: {loc} is not a zone of {r} in zones.tsv (kept anyway)")
        for loc in sorted(set(zone_names) - set(per_zone)):
            warn(f"offerings: zone {loc} has no offerings data")
        for loc in sorted(per_zone):
            types = sorted(per_zone[loc])
            for t in types:
                if t not in known_types:
                    unknown[t] += 1
            types = [t for t in types if t in known_types]
            n_pairs += len(types)
            off_lines.append(f"{r}\t{loc}\t{' '.join(types)}")
    header = [
        f"# region\tzone_name\tinstance_types (space-separated, sorted)  -- from moto {MOTO_VERSION} "
        f"ec2/resources/instance_type_offerings/availability-zone/*.json.gz. {len(off_lines)} zone lines, "
        f"{n_pairs} (zone, type) offerings. {src}",
        f"# regions without moto offerings data (omitted): {' '.join(missing) if missing else '(none)'}",
        f"# dropped {sum(unknown.values())} (zone, type) entries naming {len(unknown)} distinct types absent "
        f"from instance_types.json" + (f": {' '.join(sorted(unknown))}" if unknown else ""),
    ]
    write(outdir, "offerings.tsv", header + off_lines)

    # ---- moto's public AMI catalog (for `kumo serve --moto-compat`), as moto ships it
    amis = load_gz_json(os.path.join(MOTO_DIR, "ec2", "resources", "amis.json.gz"))
    with open(os.path.join(outdir, "moto_amis.json"), "w", encoding="utf-8") as f:
        json.dump(amis, f, indent=1)
        f.write("\n")

    # ---- summary
    print(f"moto {MOTO_VERSION} at {MOTO_DIR}")
    print(f"moto AMIs: {len(amis)}")
    print(f"botocore {BOTOCORE_VERSION} at {BOTOCORE_DIR}")
    print(f"regions: {len(regions)} ({sum(r in DEFAULT_ENABLED_REGIONS for r in regions)} default, "
          f"{sum(r not in DEFAULT_ENABLED_REGIONS for r in regions)} opt-in)")
    print(f"zones: {nz}; regions using moto's regularized fallback: {' '.join(regular)}")
    print(f"instance types: {len(filtered)}")
    print(f"dropped keys (path: count): {dict(sorted(dropped.items())) or 'none'}")
    print(f"offerings: {len(off_lines)} lines, {n_pairs} pairs; missing regions: {missing}; "
          f"ignored offering files: {ignored_files}; unknown types dropped: {dict(unknown) or 'none'}")
    for fn in ("regions.tsv", "zones.tsv", "offerings.tsv", "instance_types.json"):
        print(f"{fn}: {os.path.getsize(os.path.join(outdir, fn))} bytes")
    print(f"warnings: {len(warnings)}")


def write(outdir, name, lines):
    with open(os.path.join(outdir, name), "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
