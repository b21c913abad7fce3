//! GetConsoleOutput: what the guest wrote to its console.

use crate::Kumo;
use kumo_ec2_wire::{Ec2Error, RequestContext};

/// GetConsoleOutput: what the guest wrote to its console, the last 64 KiB of it as AWS
/// keeps. Under the null driver no guest writes anything, and the output is absent.
pub fn console_output(
    k: &Kumo,
    ctx: &RequestContext,
    input: kumo_ec2_wire::shapes::GetConsoleOutputRequest,
) -> Result<kumo_ec2_wire::shapes::GetConsoleOutputResult, Ec2Error> {
    let s = crate::scope(ctx);
    let r = k
        .store
        .read(|v| crate::repo::instance::load(k, v, s, std::slice::from_ref(&input.instance_id)))
        .map_err(|f| f.0)?
        .remove(0);
    let output = k.compute.driver.console(&r.id).map(|bytes| {
        use base64::Engine;
        let tail = &bytes[bytes.len().saturating_sub(64 * 1024)..];
        base64::engine::general_purpose::STANDARD.encode(tail)
    });
    Ok(kumo_ec2_wire::shapes::GetConsoleOutputResult {
        instance_id: Some(r.id.clone()),
        output,
        timestamp: Some(kumo_ec2_wire::DateTime(k.now_ms())),
    })
}
