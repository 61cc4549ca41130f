//! W3C trace context: how a request id that is a trace id continues into
//! the AMQP messages it causes.

use uuid::Uuid;

/// The header (HTTP and AMQP) carrying the trace context.
pub const TRACEPARENT_HEADER: &str = "traceparent";

/// The trace id of a W3C `traceparent` (`00-<32 hex>-<16 hex>-<2 hex>`, lower
/// case, neither id all zeros), or `None` if it is not one.
pub fn trace_id(traceparent: &str) -> Option<&str> {
    let mut parts = traceparent.trim().split('-');
    let (version, trace, parent, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, len: usize| {
        s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    let not_zero = |s: &str| s.bytes().any(|b| b != b'0');
    let valid = parts.next().is_none()
        && hex(version, 2)
        && version != "ff"
        && hex(trace, 32)
        && not_zero(trace)
        && hex(parent, 16)
        && not_zero(parent)
        && hex(flags, 2);
    valid.then_some(trace)
}

/// A `traceparent` continuing the trace `request_id` names, when it is a
/// W3C trace id (32 lower-case hex digits), from a new parent id.
pub fn traceparent_for(request_id: &str) -> Option<String> {
    let parent = Uuid::new_v4().as_u64_pair().0.max(1);
    let candidate = format!("00-{request_id}-{parent:016x}-01");
    trace_id(&candidate).is_some().then_some(candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn only_well_formed_traceparents_name_a_trace() {
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(trace_id(bad), None, "{bad}");
        }
        assert_eq!(
            trace_id(TRACEPARENT),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
    }

    #[test]
    fn a_trace_id_continues_as_a_traceparent_and_other_ids_do_not() {
        let continued = traceparent_for("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();

        assert_eq!(
            trace_id(&continued),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(traceparent_for("checkout-42"), None);
    }
}

/// Properties over generated `traceparent` values, 256 cases each (stated
/// so that the unit tests stay fast).
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn a_trace_id_read_from_anything_is_32_hex_digits_that_continue_as_a_traceparent(
            header in "[0-9a-f-]{0,60}|.{0,60}"
        ) {
            if let Some(trace) = trace_id(&header) {
                prop_assert_eq!(trace.len(), 32);
                prop_assert!(trace.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
                let continued = traceparent_for(trace).unwrap();
                prop_assert_eq!(trace_id(&continued), Some(trace));
            }
        }

        #[test]
        fn a_well_formed_traceparent_names_its_trace(
            version in "[0-9a-e][0-9a-f]|f[0-9a-e]",
            trace in "[0-9a-f]{32}",
            parent in "[0-9a-f]{16}",
            flags in "[0-9a-f]{2}",
            extra in proptest::option::of("-[0-9a-f]{0,4}"),
        ) {
            let header = format!("{version}-{trace}-{parent}-{flags}{}", extra.as_deref().unwrap_or(""));
            let zero = |s: &str| s.bytes().all(|b| b == b'0');

            let named = trace_id(&header);

            if zero(&trace) || zero(&parent) || extra.is_some() {
                prop_assert_eq!(named, None);
            } else {
                prop_assert_eq!(named, Some(trace.as_str()));
            }
        }
    }
}
