//! What the generated CRI types need to serialize as protobuf's JSON mapping does: prost keeps
//! an enumeration field as a bare `i32`, while the JSON mapping writes the value's name. The
//! generated fields name the function below in their attributes.

use serde::Serializer;

/// An enumeration of the CRI API; implemented for each one by the generated code.
pub(crate) trait ProtoEnum {
    /// The value's name as the proto spells it, or `None` for a number the API (as we know
    /// it) has no name for.
    fn name_of(value: i32) -> Option<&'static str>;
}

/// The value's name; a number a newer runtime sends that we have no name for stays a number,
/// as the JSON mapping does.
pub(crate) fn enum_name<E: ProtoEnum, S: Serializer>(value: &i32, s: S) -> Result<S::Ok, S::Error> {
    match E::name_of(*value) {
        Some(name) => s.serialize_str(name),
        None => s.serialize_i32(*value),
    }
}

#[cfg(test)]
mod tests {
    use super::super::api;

    #[test]
    fn messages_serialize_as_the_protobuf_json_mapping() {
        let status = api::ContainerStatus {
            id: "c1".into(),
            state: api::ContainerState::ContainerRunning as i32,
            started_at: 1_700_000_000_000_000_000,
            labels: [("app".to_owned(), "web".to_owned())].into(),
            ..Default::default()
        };
        let v = serde_json::to_value(&status).unwrap();
        assert_eq!(v["state"], "CONTAINER_RUNNING");
        assert_eq!(v["startedAt"], 1_700_000_000_000_000_000_i64);
        assert_eq!(v["labels"]["app"], "web");
        assert_eq!(v["id"], "c1");

        let unknown = api::PodSandbox {
            state: 99,
            ..Default::default()
        };
        assert_eq!(serde_json::to_value(&unknown).unwrap()["state"], 99);
    }
}
