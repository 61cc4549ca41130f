mod catalogue;
mod consuming;
mod helpers;
mod products;
mod readiness;
