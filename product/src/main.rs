use std::process::ExitCode;

use product::config::Settings;
use product::startup::Application;

#[actix_web::main]
async fn main() -> ExitCode {
    platform::service::run("product", Settings::from_env, Application::build).await
}
