use super::*;

fn quantity(n: u32) -> Quantity {
    Quantity::try_from(n).unwrap()
}

#[test]
fn empty_body_orders_one_laptop() {
    for body in [&b""[..], b"  \n"] {
        assert_eq!(OrderRequest::parse(body).unwrap(), OrderRequest::default());
    }
    assert_eq!(OrderRequest::default().product_id.as_str(), "123");
}

#[test]
fn json_body_orders_what_it_names() {
    let order = OrderRequest::parse(br#"{"product_id":"456","quantity":2}"#).unwrap();
    assert_eq!(
        order,
        OrderRequest {
            product_id: ProductId::try_from("456").unwrap(),
            quantity: quantity(2),
            customer_email: None,
        }
    );
    let order = OrderRequest::parse(br#"{"product_id":"456"}"#).unwrap();
    assert_eq!(order.quantity.get(), 1);
    let order = OrderRequest::parse(br#"{"customer_email":"ada@example.com"}"#).unwrap();
    let email = order.customer_email.as_ref().map(CustomerEmail::as_str);
    assert_eq!(email, Some("ada@example.com"));
}

#[test]
fn invalid_bodies_name_the_field() {
    let cases: [(&[u8], Option<&str>); 11] = [
        (b"{not json", None),
        (b"[1]", None),
        (br#"{"product_id":"456","colour":"red"}"#, Some("colour")),
        (br#"{"product_id":456}"#, Some("product_id")),
        (br#"{"quantity":"two"}"#, Some("quantity")),
        (br#"{"product_id":""}"#, Some("product_id")),
        (br#"{"product_id":"a\u0007b"}"#, Some("product_id")),
        (br#"{"quantity":0}"#, Some("quantity")),
        (br#"{"quantity":1001}"#, Some("quantity")),
        (br#"{"quantity":1.5}"#, Some("quantity")),
        (br#"{"quantity":-3}"#, Some("quantity")),
    ];
    for (body, field) in cases {
        let error = OrderRequest::parse(body).unwrap_err();
        let body = String::from_utf8_lossy(body);
        assert_eq!(error.field.as_deref(), field, "{body}");
    }
    let body = serde_json::json!({ "customer_email": "ada@" }).to_string();
    let error = OrderRequest::parse(body.as_bytes()).unwrap_err();
    assert_eq!(error.field.as_deref(), Some("customer_email"));
}

#[test]
fn product_ids_are_printable_and_bounded() {
    let longest = "x".repeat(MAX_PRODUCT_ID_CHARS);
    for good in ["456", "a b", &longest] {
        assert_eq!(ProductId::try_from(good).unwrap().as_str(), good);
    }
    let too_long = "x".repeat(MAX_PRODUCT_ID_CHARS + 1);
    for bad in ["", "  ", "a\u{7}b", &too_long] {
        let error = ProductId::try_from(bad).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("product_id"), "{bad:?}");
    }
}

#[test]
fn quantities_are_whole_numbers_from_one_to_the_maximum() {
    for good in [1, 2, MAX_QUANTITY] {
        assert_eq!(quantity(good).get(), good);
    }
    assert_eq!(Quantity::from_json(&serde_json::json!(2)).unwrap().get(), 2);
    let error = Quantity::try_from(MAX_QUANTITY + 1).unwrap_err();
    assert_eq!(
        error.message,
        "quantity must be a whole number from 1 to 1000, got 1001"
    );
    for bad in ["0", "1001", "1.5", "-3", "\"two\"", "null", "4294967297"] {
        let error = Quantity::from_json(&serde_json::from_str(bad).unwrap()).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("quantity"), "{bad}");
        assert!(error.message.ends_with(&format!("got {bad}")), "{error}");
    }
}

#[test]
fn customer_emails_are_plausible_addresses() {
    for good in ["ada@example.com", "a.b+c@mail.example.org"] {
        assert_eq!(CustomerEmail::try_from(good).unwrap().as_str(), good);
    }
    let too_long = format!("{}@example.com", "a".repeat(MAX_EMAIL_CHARS));
    let emails = [
        "ada",
        "ada@",
        "@example.com",
        "ada@example",
        "a b@example.com",
        "a@b@c.com",
        "ada@example..com",
        &too_long,
    ];
    for bad in emails {
        let error = CustomerEmail::try_from(bad).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("customer_email"), "{bad}");
    }
}

#[test]
fn idempotency_keys_are_printable_and_bounded() {
    let key = IdempotencyKey::try_from("order-42").unwrap();
    assert_eq!(key.as_str(), "order-42");
    let too_long = "k".repeat(MAX_IDEMPOTENCY_KEY_CHARS + 1);
    for bad in ["", "  ", "a\u{7}b", &too_long] {
        let error = IdempotencyKey::try_from(bad).unwrap_err();
        assert_eq!(error.field.as_deref(), Some("Idempotency-Key"), "{bad:?}");
    }
}

#[test]
fn fingerprints_tell_requests_apart() {
    let one = OrderRequest::default();
    let two = OrderRequest {
        quantity: quantity(2),
        ..OrderRequest::default()
    };
    assert_eq!(one.fingerprint(), OrderRequest::default().fingerprint());
    assert_ne!(one.fingerprint(), two.fingerprint());
    // The form stored with the keys of earlier orders.
    assert_eq!(one.fingerprint(), r#"["123",1,null]"#);
}

/// Properties of the body and header decoders over generated input, 256
/// cases each (stated so that the unit tests stay fast).
mod properties {
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::*;

    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (0u32..2000).prop_map(|n| json!(f64::from(n))),
            any::<f64>().prop_map(Value::from),
            ".{0,70}".prop_map(Value::from),
            "[a-z]{1,5}@[a-z]{1,5}\\.[a-z]{2}".prop_map(Value::from),
        ];
        leaf.prop_recursive(2, 8, 4, |inner| {
            prop::collection::vec(inner, 0..3).prop_map(Value::from)
        })
    }

    /// The body that orders `order`, every field written out.
    fn body_of(order: &OrderRequest) -> Vec<u8> {
        json!({
            "product_id": order.product_id.as_str(),
            "quantity": order.quantity.get(),
            "customer_email": order.customer_email.as_ref().map(CustomerEmail::as_str),
        })
        .to_string()
        .into_bytes()
    }

    /// A parsed order reads back from its own body as itself.
    fn reads_back(parsed: Result<OrderRequest, InvalidOrder>) -> Result<(), TestCaseError> {
        match parsed {
            Ok(order) => {
                let again = OrderRequest::parse(&body_of(&order)).unwrap();
                prop_assert_eq!(again.fingerprint(), order.fingerprint());
                prop_assert_eq!(again, order);
            }
            Err(e) => prop_assert!(e.field.as_deref() != Some(""), "{}", e),
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_bytes_are_an_order_that_reads_back_or_an_error(body in prop::collection::vec(any::<u8>(), 0..128)) {
            reads_back(OrderRequest::parse(&body))?;
        }

        #[test]
        fn any_field_values_are_an_order_that_reads_back_or_an_error_naming_a_field(
            fields in prop::collection::btree_map(
                prop_oneof![Just("product_id"), Just("quantity"), Just("customer_email"), Just("colour")],
                any_json(),
                0..4,
            ),
        ) {
            let body = json!(fields).to_string();

            let parsed = OrderRequest::parse(body.as_bytes());

            if let Err(e) = &parsed {
                prop_assert!(e.field.as_deref().is_some_and(|f| fields.contains_key(f)), "{}", e);
            }
            reads_back(parsed)?;
        }

        #[test]
        fn a_valid_order_is_read_with_its_quantity_written_as_an_integer_or_a_float(
            product_id in "[!-~][ -~]{0,62}[!-~]|[!-~]",
            quantity in 1..=MAX_QUANTITY,
            as_float in any::<bool>(),
            email in proptest::option::of("[a-z0-9.+]{1,20}@[a-z]{1,10}\\.[a-z]{2,5}"),
        ) {
            let written = if as_float { json!(f64::from(quantity)) } else { json!(quantity) };
            let body = json!({"product_id": product_id, "quantity": written, "customer_email": email});

            let order = OrderRequest::parse(body.to_string().as_bytes()).unwrap();

            prop_assert_eq!(order.product_id.as_str(), product_id.as_str());
            prop_assert_eq!(order.quantity.get(), quantity);
            prop_assert_eq!(order.customer_email.as_ref().map(CustomerEmail::as_str), email.as_deref());
        }

        /// The document's pattern and length limits describe exactly the
        /// keys the code takes (a header carries ASCII only).
        #[test]
        fn an_ascii_idempotency_key_is_taken_exactly_when_the_document_allows_it(
            key in "[ -~]{0,300}|[ ]{0,3}[!-~]{0,3}[ \\t\\x00-\\x1f\\x7f]{0,2}|[!-~]{250,260}",
        ) {
            let pattern = regex::Regex::new(IDEMPOTENCY_KEY_PATTERN).unwrap();
            let documented = pattern.is_match(&key) && (1..=MAX_IDEMPOTENCY_KEY_CHARS).contains(&key.len());

            let taken = IdempotencyKey::try_from(key.as_str());

            prop_assert_eq!(taken.is_ok(), documented, "{:?}", taken);
            if let Ok(taken) = taken {
                prop_assert_eq!(taken.as_str(), key.as_str());
            }
        }
    }
}
