// Package kafka is the KisFlow connector for Apache Kafka.
package kafka
