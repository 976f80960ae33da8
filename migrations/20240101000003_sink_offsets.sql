-- What the connect worker's JDBC sink has applied: written in the same transaction as each batch
-- of rows (`next_offset` = last applied offset + 1). The order-service reads it to honour
-- X-Consistency-Token (read-your-writes across instances). The sink creates it too, hence
-- IF NOT EXISTS on both sides; keep the two definitions identical.
CREATE TABLE IF NOT EXISTS datasync_sink_offsets (
    connector       VARCHAR(255) NOT NULL,
    topic           VARCHAR(255) NOT NULL,
    kafka_partition INT          NOT NULL,
    next_offset     BIGINT       NOT NULL,
    updated_at      DATETIME(3)  NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    PRIMARY KEY (connector, topic, kafka_partition)
);
