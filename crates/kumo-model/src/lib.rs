//! Pure EC2 types and rules: resource ids, regions and zones, the instance-type catalog, tag
//! limits and the filter engine. No I/O of any kind happens here.

pub mod catalog;
pub mod cidr;
pub mod credits;
pub mod ebs;
pub mod filter;
pub mod ids;
pub mod images;
pub mod ipam;
pub mod lifecycle;
pub mod metrics;
pub mod regions;
pub mod tags;
