//! The `topology` command refuses bad settings before it connects: exit
//! code 2 and one line naming the variable. (Its work on a broker is tested
//! with the system: system-tests/tests/least_privilege.rs and tls.rs.)

use std::process::{Command, Stdio};

fn topology(env: &[(&str, &str)]) -> (Option<i32>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_topology"));
    command.env_clear().stdin(Stdio::null());
    for (var, value) in env {
        command.env(var, value);
    }
    let output = command.output().expect("running topology");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn bad_settings_are_refused_naming_the_variable_before_connecting() {
    let cases = [
        ("AMQP_URL", "http://rabbitmq:5672/%2f"),
        ("AMQP_DELIVERY_LIMIT", "0"),
        ("AMQP_DELIVERY_LIMIT", "ten"),
        ("RABBITMQ_MANAGEMENT_URL", "ftp://rabbitmq:15672"),
        ("AMQP_CA_FILE", "/nonexistent/ca.pem"),
    ];
    for (var, value) in cases {
        // Act: a broker that does not exist, so only the settings can fail.
        let (code, said) = topology(&[
            ("AMQP_URL", "amqp://admin:secret@127.0.0.1:1/%2f"),
            (var, value),
        ]);

        // Assert
        assert_eq!(code, Some(2), "{var}={value}: {said}");
        assert!(
            said.contains(&format!("invalid {var}")),
            "{var}={value}: {said}"
        );
        assert!(
            !said.contains("secret"),
            "{var}={value}: the password shown: {said}"
        );
    }
}
