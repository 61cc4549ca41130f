pub mod health;
pub mod products;
