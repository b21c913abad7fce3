//! What a VPC serves its guests, and what a guest is given at boot: the instance metadata
//! service (with Kumo's agent channel), DHCP, DNS, the security groups' rules as one nftables
//! script, the guest files for the init (with `#cloud-config` turned into a script), and SSH
//! host keys made ahead of boots, and Kumo's API served on interface endpoints.

pub mod cloudconfig;
pub mod dhcp;
pub mod dns;
pub mod endpoints;
pub mod firewall;
pub(crate) mod guest_files;
pub mod hostkeys;
pub mod imds;
