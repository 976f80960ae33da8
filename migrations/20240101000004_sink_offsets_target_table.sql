-- Which table each sink connector writes a topic into, recorded with its progress, so the
-- order-service can take any sink that writes the orders topic into the orders table as proof
-- that an order's row is there, whatever the connector is called. The sink adds the column
-- too when it finds an older table (it creates the table itself when the migrations have not
-- run); keep the definitions identical.
ALTER TABLE datasync_sink_offsets ADD COLUMN IF NOT EXISTS target_table VARCHAR(255) NULL AFTER kafka_partition;
