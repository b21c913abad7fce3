//! The one STS operation tools use to learn their account, `GetCallerIdentity`. STS speaks
//! the plain query protocol (a `Result` wrapper and `ResponseMetadata`), not EC2's.

use axum::http::StatusCode;
use axum::response::Response;
use kumo_ec2_wire::encode::XmlWriter;

const NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

pub fn handle(action: &str, account: &str, rid: &str) -> Response {
    let mut w = XmlWriter::new();
    w.raw("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    if action != "GetCallerIdentity" {
        w.raw("<ErrorResponse xmlns=\"");
        w.raw(NS);
        w.raw("\"><Error><Type>Sender</Type>");
        w.field("Code", "InvalidAction");
        w.field(
            "Message",
            format!("Could not find operation {action} for version 2011-06-15").as_str(),
        );
        w.raw("</Error>");
        w.field("RequestId", rid);
        w.raw("</ErrorResponse>");
        return super::xml(StatusCode::BAD_REQUEST, rid, w.into_bytes());
    }
    w.raw("<GetCallerIdentityResponse xmlns=\"");
    w.raw(NS);
    w.raw("\"><GetCallerIdentityResult>");
    w.field("Arn", format!("arn:aws:iam::{account}:root").as_str());
    w.field("UserId", account);
    w.field("Account", account);
    w.raw("</GetCallerIdentityResult><ResponseMetadata>");
    w.field("RequestId", rid);
    w.raw("</ResponseMetadata></GetCallerIdentityResponse>");
    super::xml(StatusCode::OK, rid, w.into_bytes())
}
