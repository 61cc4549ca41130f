mod consuming;
mod helpers;
mod products;
