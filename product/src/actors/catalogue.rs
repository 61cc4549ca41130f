//! The read side of the catalogue. Reads go straight to the database, side
//! by side: they never queue behind the `StockKeeper`'s changes.

use std::collections::BTreeMap;

use actix::prelude::*;
use foundation::db::bounded;

use crate::domain::ProductView;
use crate::domain::catalogue::ProductDetails;
use crate::store::ProductStore;
use crate::store::StockError;

/// Every product with its current stock, keyed by id.
#[derive(Debug, Message)]
#[rtype(result = "Result<BTreeMap<String, ProductView>, StockError>")]
pub struct ListProducts;

/// One product.
#[derive(Debug, Message)]
#[rtype(result = "Result<Option<ProductDetails>, StockError>")]
pub struct GetProduct(pub String);

pub struct Catalogue {
    store: ProductStore,
}

impl Catalogue {
    pub fn new(store: ProductStore) -> Self {
        Self { store }
    }
}

impl Actor for Catalogue {
    type Context = Context<Self>;
}

impl Handler<ListProducts> for Catalogue {
    type Result = ResponseFuture<Result<BTreeMap<String, ProductView>, StockError>>;

    fn handle(&mut self, _: ListProducts, _: &mut Context<Self>) -> Self::Result {
        let store = self.store.clone();
        Box::pin(async move { bounded(store.list()).await })
    }
}

impl Handler<GetProduct> for Catalogue {
    type Result = ResponseFuture<Result<Option<ProductDetails>, StockError>>;

    fn handle(&mut self, GetProduct(id): GetProduct, _: &mut Context<Self>) -> Self::Result {
        let store = self.store.clone();
        Box::pin(async move { bounded(store.get(&id)).await })
    }
}
