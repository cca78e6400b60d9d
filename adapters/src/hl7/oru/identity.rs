//! Which device an OBX row belongs to. A row's own `OBX-18` (an EI) names it; else the
//! outermost header row enclosing it by `OBX-4` path; else the message's fallback: the only
//! device the OBX rows name, or, when none does, `MSH-3` then `MSH-4` (an HD), or whatever the
//! sender's [`Identity`] rule says. A row that could belong to several devices gets none and
//! is refused rather than guessed.

use std::borrow::Cow;

use super::Identity;
use crate::hl7::message::{Message, Value};
use crate::model::DeviceId;

/// The device named by an EI (`OBX-18`): its entity id, or for an EUI-64 whose entity id is
/// empty, its universal id.
pub(super) fn ei_device<'a>(v: Value<'a>) -> Option<Cow<'a, str>> {
    let id = v.comp(1).trimmed();
    if !id.is_empty() {
        return Some(id);
    }
    if v.comp(4).trimmed().eq_ignore_ascii_case("EUI-64") {
        let u = v.comp(3).trimmed();
        return (!u.is_empty()).then_some(u);
    }
    None
}

/// The device named by an HD (`MSH-3`, `MSH-4`): the universal id of an EUI-64, else the
/// namespace id.
fn hd_device<'a>(v: Value<'a>) -> Option<Cow<'a, str>> {
    if v.comp(3).trimmed().eq_ignore_ascii_case("EUI-64") {
        let u = v.comp(2).trimmed();
        if !u.is_empty() {
            return Some(u);
        }
    }
    let id = v.comp(1).trimmed();
    (!id.is_empty()).then_some(id)
}

/// `1.2.0.0` → `[1, 2]`: the rows it encloses start with this path.
pub(super) fn header_prefix(path: &[u8]) -> Vec<&[u8]> {
    let mut parts: Vec<&[u8]> = path.split(|&b| b == b'.').collect();
    while parts.last().is_some_and(|p| p.is_empty() || *p == b"0") {
        parts.pop();
    }
    parts
}

/// The device of the rows that name none, for the whole message: by the sender's rule
/// `MSH-3` or `MSH-4`; else the only device the OBX rows name; else, when no OBX row names
/// one (and the rule allows MSH), `MSH-3` then `MSH-4`. `None` when that is ambiguous.
pub(super) fn fallback_device(msg: &Message<'_>, identity: Identity) -> Option<DeviceId> {
    let msh = msg.msh();
    // Which devices the OBX rows name, to know whether a row without one is unambiguous.
    let mut named: Vec<String> = Vec::new();
    for s in msg.segments().iter().filter(|s| s.name() == "OBX") {
        if let Some(id) = ei_device(s.field(18)) {
            if DeviceId::new(id.as_ref()).is_ok() && !named.iter().any(|n| *n == id) {
                named.push(id.into_owned());
            }
        }
    }
    let msh_device =
        |n: usize| hd_device(msh.field(n)).and_then(|id| DeviceId::new(id.as_ref()).ok());
    match identity {
        Identity::Msh3 => msh_device(3),
        Identity::Msh4 => msh_device(4),
        _ if named.len() == 1 => DeviceId::new(named[0].as_str()).ok(),
        Identity::Auto if named.is_empty() => msh_device(3).or_else(|| msh_device(4)),
        _ => None,
    }
}

/// The device of one row: its own `OBX-18` (`own_id`), else the outermost header row whose
/// path encloses its `OBX-4` `path`, else the message's `fallback`. When the sender's rule
/// names the device (`forced`), only the fallback counts. `Err` is why the row has none, for
/// its reject (`OBX-18` at fault).
pub(super) fn row_device(
    own_id: Option<Cow<'_, str>>,
    path: &[u8],
    header_ids: &[(Vec<&[u8]>, DeviceId)],
    fallback: Option<&DeviceId>,
    forced: bool,
) -> Result<DeviceId, &'static str> {
    let own_id = if forced { None } else { own_id };
    match own_id {
        Some(id) => DeviceId::new(id.as_ref())
            .map_err(|_| "OBX-18 is not a valid device id (1-64 of A-Z a-z 0-9 . _ -)"),
        None => {
            let path: Vec<&[u8]> = path.split(|&b| b == b'.').collect();
            let headers: &[(Vec<&[u8]>, DeviceId)] = if forced { &[] } else { header_ids };
            let enclosing = headers
                .iter()
                .filter(|(prefix, _)| prefix.len() < path.len() && path.starts_with(prefix))
                .min_by_key(|(prefix, _)| prefix.len())
                .map(|(_, id)| id);
            match enclosing.or(fallback) {
                Some(d) => Ok(d.clone()),
                None => Err("no device id: OBX-18 is empty and the message names no single device"),
            }
        }
    }
}
