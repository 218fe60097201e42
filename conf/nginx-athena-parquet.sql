-- Athena table for conf/nginx-athena-parquet.conf (replace BUCKET).
-- Columns are matched by name; logship writes lowercase names. `time` is an INT64
-- TIMESTAMP(MILLIS, UTC) column; code and size are BIGINT (null where nginx logged '-').
CREATE EXTERNAL TABLE IF NOT EXISTS nginx_parquet (
  `time`               timestamp,
  remote               string,
  host                 string,
  `user`               string,
  method               string,
  path                 string,
  code                 bigint,
  size                 bigint,
  referer              string,
  agent                string,
  http_x_forwarded_for string
)
PARTITIONED BY (dt string, hour string)
STORED AS PARQUET
LOCATION 's3://BUCKET/nginx_parquet/'
TBLPROPERTIES (
  'projection.enabled' = 'true',
  'projection.dt.type' = 'date',
  'projection.dt.format' = 'yyyy-MM-dd',
  'projection.dt.range' = '2026-01-01,NOW',
  'projection.hour.type' = 'integer',
  'projection.hour.range' = '0,23',
  'projection.hour.digits' = '2',
  'storage.location.template' = 's3://BUCKET/nginx_parquet/dt=${dt}/hour=${hour}/'
);

-- Count by status for one hour: reads the code column of one partition only.
-- SELECT code, count(*) FROM nginx_parquet WHERE dt = '2026-11-21' AND hour = '09' GROUP BY code;
