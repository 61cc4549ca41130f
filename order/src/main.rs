use std::process::ExitCode;

use order::config::Settings;
use order::startup::Application;

#[actix_web::main]
async fn main() -> ExitCode {
    platform::service::run("order", Settings::from_env, Application::build).await
}
