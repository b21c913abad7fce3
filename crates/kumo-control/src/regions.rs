//! DescribeRegions and DescribeAvailabilityZones.

use crate::core::filters;
use kumo_ec2_wire::filters::{DescribeAvailabilityZones as ZoneF, DescribeRegions as RegionF};
use kumo_ec2_wire::shapes::*;
use kumo_ec2_wire::FilterName;
use kumo_ec2_wire::{Ec2Error, RequestContext};
use kumo_model::filter::Filterable;
use kumo_model::regions::{self, Region, Zone};

struct RegionView<'a>(&'a Region);

impl Filterable<RegionF> for RegionView<'_> {
    fn field(&self, f: RegionF, out: &mut dyn FnMut(&str)) {
        let _name = f.name();
        match f {
            RegionF::Endpoint => out(&self.0.endpoint()),
            RegionF::OptInStatus => out(self.0.opt_in_status),
            RegionF::RegionName => out(self.0.name),
        }
    }
}

pub fn describe_regions(
    _ctx: &RequestContext,
    input: DescribeRegionsRequest,
) -> Result<DescribeRegionsResult, Ec2Error> {
    let fs = filters::compile::<RegionF>(input.filters, &[])?;
    let names = input.region_names.unwrap_or_default();
    for n in &names {
        if regions::get(n).is_none() {
            return Err(Ec2Error::invalid_value(format!("Invalid region: [{n}]")));
        }
    }
    let all = input.all_regions.unwrap_or(false);
    let out = regions::all()
        .iter()
        // Named regions are answered whether enabled or not, as AWS does.
        .filter(|r| {
            if names.is_empty() {
                all || r.enabled_by_default()
            } else {
                names.iter().any(|n| n == r.name)
            }
        })
        .filter(|r| fs.matches(&RegionView(r)))
        .map(|r| Region_ {
            endpoint: Some(r.endpoint()),
            region_name: Some(r.name.to_string()),
            opt_in_status: Some(r.opt_in_status.to_string()),
            geography: None,
        })
        .collect();
    Ok(DescribeRegionsResult { regions: Some(out) })
}

use kumo_ec2_wire::shapes::Region as Region_;

struct ZoneView<'a> {
    region: &'a Region,
    zone: &'a Zone,
    group: String,
}

impl Filterable<ZoneF> for ZoneView<'_> {
    fn field(&self, f: ZoneF, out: &mut dyn FnMut(&str)) {
        let _name = f.name();
        match f {
            ZoneF::GroupName => out(&self.group),
            ZoneF::GroupLongName => out(&self.region.group_long_name()),
            ZoneF::OptInStatus => out("opt-in-not-required"),
            ZoneF::RegionName => out(self.region.name),
            ZoneF::State => out("available"),
            ZoneF::ZoneId => out(self.zone.id),
            ZoneF::ZoneName => out(self.zone.name),
            ZoneF::ZoneType => out("availability-zone"),
            // Standard zones have no messages and no parent zone.
            // Availability Zones have no parent zone (only Local and Wavelength Zones do) and
            // no message.
            ZoneF::Message | ZoneF::ParentZoneId | ZoneF::ParentZoneName => {}
        }
    }
}

pub fn describe_availability_zones(
    ctx: &RequestContext,
    input: DescribeAvailabilityZonesRequest,
) -> Result<DescribeAvailabilityZonesResult, Ec2Error> {
    let fs = filters::compile::<ZoneF>(input.filters, &[])?;
    let region = regions::get(&ctx.region);
    let zones: &[Zone] = region.map(|r| r.zones.as_slice()).unwrap_or(&[]);
    let names = input.zone_names.unwrap_or_default();
    let ids = input.zone_ids.unwrap_or_default();
    if let Some(bad) = names
        .iter()
        .find(|n| !zones.iter().any(|z| z.name == n.as_str()))
    {
        return Err(Ec2Error::invalid_value(format!(
            "Invalid availability zone: [{bad}]"
        )));
    }
    if let Some(bad) = ids
        .iter()
        .find(|n| !zones.iter().any(|z| z.id == n.as_str()))
    {
        return Err(Ec2Error::invalid_value(format!(
            "Invalid availability zone-id: [{bad}]"
        )));
    }
    let mut out = Vec::new();
    if let Some(region) = region {
        for zone in zones {
            let named = names.is_empty() && ids.is_empty()
                || names.iter().any(|n| n == zone.name)
                || ids.iter().any(|n| n == zone.id);
            let view = ZoneView {
                region,
                zone,
                group: format!("{}-zg-1", region.name),
            };
            if named && fs.matches(&view) {
                out.push(AvailabilityZone {
                    zone_name: Some(zone.name.to_string()),
                    zone_id: Some(zone.id.to_string()),
                    state: Some("available".into()),
                    region_name: Some(region.name.to_string()),
                    opt_in_status: Some("opt-in-not-required".into()),
                    group_name: Some(view.group.clone()),
                    group_long_name: Some(region.group_long_name()),
                    network_border_group: Some(region.name.to_string()),
                    zone_type: Some("availability-zone".into()),
                    messages: Some(Vec::new()),
                    ..AvailabilityZone::default()
                });
            }
        }
    }
    Ok(DescribeAvailabilityZonesResult {
        availability_zones: Some(out),
    })
}
