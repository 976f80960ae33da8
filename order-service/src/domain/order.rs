use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::UserId;
use crate::error::{ApiError, FieldError};

/// The body of `POST /order-service/{userId}/orders` as sent. Fields are raw JSON values so that
/// a wrong type is reported per field ("qty: must be an integer") rather than as a serde error.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderRequest {
    pub product_id: Option<Value>,
    pub qty: Option<Value>,
    pub unit_price: Option<Value>,
}

/// A validated order request. Prices are integers in the smallest currency unit, as in the
/// tutorial (the Connect schema says int32 for `unit_price`, int64 for `total_price`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub product_id: String,
    pub qty: i32,
    pub unit_price: i32,
}

fn int_field(
    field: &'static str,
    v: &Option<Value>,
    min: i64,
    errors: &mut Vec<FieldError>,
) -> Option<i32> {
    let Some(v) = v else {
        errors.push(FieldError::new(field, "is required"));
        return None;
    };
    let n = match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            // 3.0 is fine, 3.5 is not.
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 1e15)
                .map(|f| f as i64)
        }),
        _ => None,
    };
    match n {
        None => {
            errors.push(FieldError::new(field, "must be an integer"));
            None
        }
        Some(n) if n < min => {
            errors.push(FieldError::new(field, format!("must be at least {min}")));
            None
        }
        Some(n) if n > i32::MAX as i64 => {
            errors.push(FieldError::new(
                field,
                format!("must be at most {}", i32::MAX),
            ));
            None
        }
        Some(n) => Some(n as i32),
    }
}

impl NewOrder {
    /// Checks every field and reports all problems at once.
    pub fn parse(req: OrderRequest) -> Result<NewOrder, ApiError> {
        let mut errors = Vec::new();
        let product_id = match &req.product_id {
            None => {
                errors.push(FieldError::new("productId", "is required"));
                None
            }
            Some(Value::String(s)) if s.trim().is_empty() => {
                errors.push(FieldError::new("productId", "must not be blank"));
                None
            }
            Some(Value::String(s)) if s.chars().count() > 255 => {
                errors.push(FieldError::new(
                    "productId",
                    "must be at most 255 characters",
                ));
                None
            }
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                errors.push(FieldError::new("productId", "must be a string"));
                None
            }
        };
        let qty = int_field("qty", &req.qty, 1, &mut errors);
        let unit_price = int_field("unitPrice", &req.unit_price, 0, &mut errors);
        match (product_id, qty, unit_price) {
            (Some(product_id), Some(qty), Some(unit_price)) if errors.is_empty() => Ok(NewOrder {
                product_id,
                qty,
                unit_price,
            }),
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

/// An order as published and as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub order_id: String,
    pub user_id: String,
    pub product_id: String,
    pub qty: i32,
    pub unit_price: i32,
    pub total_price: i64,
    /// Millisecond precision: what a Connect Timestamp and DATETIME(3) hold.
    pub created_at: DateTime<Utc>,
}

impl Order {
    /// A new order with a fresh UUID, `total = qty × unit price`, created now.
    pub fn create(user_id: &UserId, new: NewOrder) -> Order {
        Order {
            order_id: uuid::Uuid::new_v4().to_string(),
            user_id: user_id.as_str().to_string(),
            total_price: new.qty as i64 * new.unit_price as i64,
            product_id: new.product_id,
            qty: new.qty,
            unit_price: new.unit_price,
            created_at: Utc::now().trunc_subsecs(3),
        }
    }

    pub fn to_response(&self) -> OrderResponse {
        OrderResponse {
            order_id: self.order_id.clone(),
            product_id: self.product_id.clone(),
            qty: self.qty,
            unit_price: self.unit_price,
            total_price: self.total_price,
            created_at: self
                .created_at
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        }
    }
}

/// The JSON of an order in responses (the tutorial's `ResponseOrder`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderResponse {
    pub order_id: String,
    pub product_id: String,
    pub qty: i32,
    pub unit_price: i32,
    pub total_price: i64,
    pub created_at: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<NewOrder, ApiError> {
        NewOrder::parse(serde_json::from_value(v).unwrap())
    }

    fn fields(e: ApiError) -> Vec<&'static str> {
        match e {
            ApiError::Validation(f) => f.into_iter().map(|f| f.field).collect(),
            other => panic!("not a validation error: {other:?}"),
        }
    }

    #[test]
    fn valid_order_and_total() {
        let o = parse(json!({"productId":"CATALOG-001","qty":3,"unitPrice":1500})).unwrap();
        let order = Order::create(&UserId::parse("u1".into()).unwrap(), o);
        assert_eq!(order.total_price, 4500);
        assert_eq!(
            parse(json!({"productId":"p","qty":1,"unitPrice":0}))
                .unwrap()
                .unit_price,
            0
        );
        let max = i32::MAX;
        let big = parse(json!({"productId":"p","qty":max,"unitPrice":max})).unwrap();
        let order = Order::create(&UserId::parse("u1".into()).unwrap(), big);
        assert_eq!(order.total_price, max as i64 * max as i64);
    }

    #[test]
    fn every_bad_field_is_reported() {
        assert_eq!(
            fields(parse(json!({})).unwrap_err()),
            ["productId", "qty", "unitPrice"]
        );
        assert_eq!(
            fields(parse(json!({"productId":" ","qty":0,"unitPrice":-1})).unwrap_err()),
            ["productId", "qty", "unitPrice"]
        );
        assert_eq!(
            fields(parse(json!({"productId":7,"qty":"2","unitPrice":1.5})).unwrap_err()),
            ["productId", "qty", "unitPrice"]
        );
        assert_eq!(
            fields(parse(json!({"productId":"p","qty":1e12,"unitPrice":1})).unwrap_err()),
            ["qty"]
        );
    }
}
