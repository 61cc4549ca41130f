use std::process::ExitCode;

use order::config::Settings;
use order::startup::Application;

#[actix_web::main]
async fn main() -> ExitCode {
    shared::service::run("order", Settings::from_env, |settings, log| async move {
        Application::build(settings, log)
            .await?
            .run_until_stopped()
            .await?;
        Ok(())
    })
    .await
}
