use crate::admin::Admin;
use axum::Router;

pub(super) fn routes() -> Router<Admin> {
    Router::new()
}
