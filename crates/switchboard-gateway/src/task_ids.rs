//! The task ids and `tasks/list` cursors the gateway hands out (MCP 2025-11-25 tasks).
//!
//! A task lives on the upstream that created it, under that upstream's id. The gateway's id
//! for it is `<tag>.<upstream's id>`, where the tag is a digest of the upstream's configured
//! name: any gateway replica with the same upstreams routes it, with no table shared between
//! replicas and nothing to lose on a restart. The tag is opaque (a client learns nothing from
//! it, and cannot tell upstream names from it), and the id goes upstream without it.
//!
//! A `tasks/list` cursor carries, for each upstream with more to list, that upstream's own
//! cursor: base64url of a JSON object from tag to cursor.
//!
//! A forged id or cursor reaches nothing it should not: it names an upstream the caller must
//! be allowed to use, and the upstream shows each caller only its own tasks.

use base64::Engine as _;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// The `_meta` key that ties a `tasks/result` answer (or its error) to its task.
pub const RELATED_TASK: &str = "io.modelcontextprotocol/related-task";

/// The tag of upstream `name` in the ids of its tasks: 12 hex digits of a SHA-256, enough to
/// tell a gateway's upstreams apart (a collision is refused at start, see
/// [`crate::Gateway::start`]).
pub fn tag(name: &str) -> String {
    let digest = Sha256::digest(format!("switchboard task of {name}").as_bytes());
    digest[..6].iter().map(|b| format!("{b:02x}")).collect()
}

/// The gateway's id of task `id` of the upstream tagged `tag`.
pub fn public(tag: &str, id: &str) -> String {
    format!("{tag}.{id}")
}

/// The tag and the upstream's id of a gateway task id; `None` if it is not one.
pub fn split(public: &str) -> Option<(&str, &str)> {
    let (tag, id) = public.split_once('.')?;
    let hex = tag.len() == 12 && tag.bytes().all(|b| b.is_ascii_hexdigit());
    (hex && !id.is_empty()).then_some((tag, id))
}

/// Rewrite every task id an upstream's answer carries to the gateway's: a `Task`
/// (`tasks/get`, `tasks/cancel`, the status notification), a `CreateTaskResult` (`task`),
/// a `ListTasksResult` (`tasks`), and the related-task `_meta` of a result or error data.
pub fn outward(value: &mut Value, tag: &str) {
    let Value::Object(map) = value else { return };
    rename(map, tag);
    if let Some(task) = map.get_mut("task").and_then(Value::as_object_mut) {
        rename(task, tag);
    }
    if let Some(tasks) = map.get_mut("tasks").and_then(Value::as_array_mut) {
        for task in tasks.iter_mut().filter_map(Value::as_object_mut) {
            rename(task, tag);
        }
    }
    // Under `_meta` in a result; at the top of an error's data.
    if let Some(meta) = map.get_mut("_meta").and_then(Value::as_object_mut) {
        related(meta, tag);
    }
    related(map, tag);
}

fn related(object: &mut Map<String, Value>, tag: &str) {
    if let Some(task) = object.get_mut(RELATED_TASK).and_then(Value::as_object_mut) {
        rename(task, tag);
    }
}

fn rename(object: &mut Map<String, Value>, tag: &str) {
    if let Some(Value::String(id)) = object.get_mut("taskId") {
        *id = public(tag, id);
    }
}

/// A `tasks/list` cursor for the upstreams (by tag) that have more to list.
pub fn cursor(next: &Map<String, Value>) -> String {
    let json = Value::Object(next.clone()).to_string();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

/// The per-upstream cursors of a cursor this gateway handed out; `None` if it is not one.
pub fn parse_cursor(cursor: &str) -> Option<Map<String, Value>> {
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()?;
    let Value::Object(map) = serde_json::from_slice(&json).ok()? else {
        return None;
    };
    let sound = !map.is_empty()
        && map
            .iter()
            .all(|(tag, next)| split(&public(tag, "x")).is_some() && next.is_string());
    sound.then_some(map)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn ids_carry_an_opaque_tag_and_come_apart_again() {
        let tag = tag("code");
        assert_eq!(tag.len(), 12);
        assert_ne!(tag, super::tag("code2"));
        assert!(!tag.contains("code"));
        let id = public(&tag, "4f0c-uuid.with.dots");
        assert_eq!(split(&id), Some((tag.as_str(), "4f0c-uuid.with.dots")));
        for bad in ["", "nodot", "short.x", "zzzzzzzzzzzz.x", &format!("{tag}.")] {
            assert_eq!(split(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_task_id_of_an_answer_is_rewritten() {
        let mut answer = json!({
            "task": {"taskId": "a"},
            "tasks": [{"taskId": "b"}, {"taskId": "c"}],
            "taskId": "d",
            "_meta": {RELATED_TASK: {"taskId": "e"}},
        });
        outward(&mut answer, "t");
        assert_eq!(answer["task"]["taskId"], "t.a");
        assert_eq!(answer["tasks"][1]["taskId"], "t.c");
        assert_eq!(answer["taskId"], "t.d");
        assert_eq!(answer["_meta"][RELATED_TASK]["taskId"], "t.e");
        let mut data = json!({"taskId": "f", RELATED_TASK: {"taskId": "f"}});
        outward(&mut data, "t");
        assert_eq!(
            data,
            json!({"taskId": "t.f", RELATED_TASK: {"taskId": "t.f"}})
        );
    }

    #[test]
    fn cursors_round_trip_and_anything_else_is_refused() {
        let tag = tag("code");
        let mut next = Map::new();
        next.insert(tag.clone(), json!("upstream-cursor"));
        assert_eq!(parse_cursor(&cursor(&next)), Some(next));
        for bad in ["", "!!", "e30", &cursor(&Map::new())] {
            assert_eq!(parse_cursor(bad), None, "{bad}");
        }
        let mut odd = Map::new();
        odd.insert("not-a-tag".into(), json!("x"));
        assert_eq!(parse_cursor(&cursor(&odd)), None);
    }
}
