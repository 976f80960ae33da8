-- Orders, written ONLY by the connect worker's JDBC sink (connector `orders-sink`, upsert on
-- `order_id`): apart from `id`, the columns are exactly the fields of the Kafka Connect payload
-- the order-service publishes on the `orders` topic. Prices are integers (smallest currency
-- unit), as in the tutorial; `created_at` is a Connect Timestamp written in UTC.
CREATE TABLE IF NOT EXISTS orders (
    id          BIGINT       NOT NULL AUTO_INCREMENT,
    order_id    VARCHAR(64)  NOT NULL,
    user_id     VARCHAR(64)  NOT NULL,
    product_id  VARCHAR(255) NOT NULL,
    qty         INT          NOT NULL,
    unit_price  INT          NOT NULL,
    total_price BIGINT       NOT NULL,
    created_at  DATETIME(3)  NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY uk_orders_order_id (order_id),
    KEY ix_orders_user_id (user_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_general_ci;
