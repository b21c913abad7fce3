//! What an instance gives up as its lifecycle moves on: called in the same transaction as
//! the state change (an API action, the guest's own shutdown, a failed launch), after
//! `lifecycle::apply` decided the next state.

use crate::core::error::Fail;
use crate::records::instance::InstanceRecord;
use crate::records::net::EniRecord;
use crate::Kumo;
use kumo_model::lifecycle::State;
use kumo_store::{Read, Scope, Tx};

/// Releases what an instance holds while stopped or gone: its launch public address.
fn drop_public_ip(tx: &Tx, r: &mut InstanceRecord) -> Result<(), Fail> {
    if let Some(ip) = r.public_ip.take() {
        crate::addresses::release_public_ip(tx, &ip)?;
    }
    Ok(())
}

/// What an instance gives up when it stops or shuts down: its launch public address; T2
/// credits (lost at every stop); at termination, its interfaces.
pub fn leave(
    k: &Kumo,
    tx: &Tx,
    s: Scope,
    r: &mut InstanceRecord,
    next: State,
    gone: &mut Vec<String>,
) -> Result<(), Fail> {
    drop_public_ip(tx, r)?;
    if kumo_model::credits::burst(&r.instance_type).is_some_and(|b| b.family == "t2") {
        r.credit_balance = 0.0;
    }
    if next == State::ShuttingDown {
        release_interfaces(k, tx, s, r)?;
        // Volume files go once the transaction has committed.
        gone.extend(crate::volumes::release_for(
            tx,
            s,
            r,
            (k.now_ms(), k.options.transition_ms),
        )?);
    }
    Ok(())
}

/// At termination: interfaces marked DeleteOnTermination go, with their addresses; the
/// others are detached.
fn release_interfaces(k: &Kumo, tx: &Tx, s: Scope, r: &InstanceRecord) -> Result<(), Fail> {
    for id in &r.enis {
        let Some(mut e) = tx.get::<EniRecord>(s, id)? else {
            continue;
        };
        if e.attachment.as_ref().is_none_or(|a| a.instance_id != r.id) {
            continue;
        }
        let delete = e
            .attachment
            .as_ref()
            .is_some_and(|a| a.delete_on_termination);
        for mut a in crate::repo::address::by_interface(tx, s)? {
            if a.association.as_ref().is_some_and(|x| x.eni_id == e.id) {
                a.association = None;
                tx.update(s, &a)?;
            }
        }
        if delete {
            tx.release_owner(s, &e.id)?;
            tx.delete::<EniRecord>(s, &e.id)?;
            k.net.forget(s, &e.subnet_id);
        } else {
            e.attachment = None;
            tx.update(s, &e)?;
        }
    }
    Ok(())
}
