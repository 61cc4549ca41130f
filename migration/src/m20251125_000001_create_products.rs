use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Products {
    Table,
    Id,
    Name,
    Stock,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Products::Table)
                    .col(ColumnDef::new(Products::Id).text().not_null().primary_key())
                    .col(ColumnDef::new(Products::Name).text().not_null())
                    .col(
                        ColumnDef::new(Products::Stock)
                            .integer()
                            .not_null()
                            // The last line of defence against overselling.
                            .check(Expr::col(Products::Stock).gte(0)),
                    )
                    .to_owned(),
            )
            .await?;
        // The original system's demo catalogue.
        manager
            .exec_stmt(
                Query::insert()
                    .into_table(Products::Table)
                    .columns([Products::Id, Products::Name, Products::Stock])
                    .values_panic(["123".into(), "Laptop".into(), 10.into()])
                    .values_panic(["456".into(), "Mouse".into(), 50.into()])
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Products::Table).to_owned())
            .await
    }
}
