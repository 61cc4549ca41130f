use std::process::ExitCode;

use product::config::Settings;
use product::startup::Application;

#[actix_web::main]
async fn main() -> ExitCode {
    shared::service::run("product", Settings::from_env, |settings, log| async move {
        Application::build(settings, log)
            .await?
            .run_until_stopped()
            .await?;
        Ok(())
    })
    .await
}
