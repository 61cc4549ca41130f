use std::process::ExitCode;

use notification::config::Settings;
use notification::startup::Application;

#[actix_web::main]
async fn main() -> ExitCode {
    platform::service::run("notification", Settings::from_env, Application::build).await
}
