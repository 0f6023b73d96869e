/*
 * The C baseline of benchmarks/relay_throughput.py: rabbitmq-c publishing COUNT ready messages shaped like the
 * relay's (200-byte body, mikkoo-like properties, 4 headers), mandatory, with publisher confirms pipelined in
 * windows (window N+1 goes out before the confirms of window N are awaited), timed from connecting to the last
 * confirm. Prints "rate <events/s>". Built by benchmarks/setup.sh.
 *
 *     c_publisher HOST PORT EXCHANGE ROUTING_KEY COUNT WINDOW BODY_BYTES
 */
#include <amqp.h>
#include <amqp_tcp_socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void die_on_error(amqp_rpc_reply_t reply, const char *doing) {
    if (reply.reply_type != AMQP_RESPONSE_NORMAL) {
        fprintf(stderr, "c_publisher: %s failed (%d)\n", doing, reply.reply_type);
        exit(1);
    }
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

/* Read frames until every message up to and including `tag` is confirmed; returns the highest tag confirmed. */
static uint64_t await_confirms(amqp_connection_state_t conn, uint64_t confirmed, uint64_t tag) {
    while (confirmed < tag) {
        amqp_frame_t frame;
        if (amqp_simple_wait_frame(conn, &frame) != AMQP_STATUS_OK) {
            fprintf(stderr, "c_publisher: reading confirms failed\n");
            exit(1);
        }
        if (frame.frame_type != AMQP_FRAME_METHOD) {
            continue;
        }
        if (frame.payload.method.id == AMQP_BASIC_ACK_METHOD) {
            amqp_basic_ack_t *ack = frame.payload.method.decoded;
            confirmed = ack->delivery_tag;  /* multiple or single, in order: the highest so far */
        } else if (frame.payload.method.id == AMQP_BASIC_NACK_METHOD ||
                   frame.payload.method.id == AMQP_CHANNEL_CLOSE_METHOD) {
            fprintf(stderr, "c_publisher: a message was refused\n");
            exit(1);
        }
        amqp_maybe_release_buffers(conn);
    }
    return confirmed;
}

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: %s HOST PORT EXCHANGE ROUTING_KEY COUNT WINDOW BODY_BYTES\n", argv[0]);
        return 2;
    }
    const char *host = argv[1], *exchange = argv[3], *routing_key = argv[4];
    int port = atoi(argv[2]);
    long count = atol(argv[5]), window = atol(argv[6]), body_bytes = atol(argv[7]);

    char *body = malloc(body_bytes);
    memset(body, 'x', body_bytes);
    amqp_table_entry_t headers[4];
    headers[0].key = amqp_cstring_bytes("origin");
    headers[0].value.kind = AMQP_FIELD_KIND_UTF8;
    headers[0].value.value.bytes = amqp_cstring_bytes("bench.example");
    headers[1].key = amqp_cstring_bytes("sequence");
    headers[1].value.kind = AMQP_FIELD_KIND_I64;
    headers[1].value.value.i64 = 4611686018427387904LL;
    headers[2].key = amqp_cstring_bytes("timestamp");
    headers[2].value.kind = AMQP_FIELD_KIND_UTF8;
    headers[2].value.value.bytes = amqp_cstring_bytes("2026-01-01T00:00:00.123456+00:00");
    headers[3].key = amqp_cstring_bytes("txid");
    headers[3].value.kind = AMQP_FIELD_KIND_I32;
    headers[3].value.value.i32 = 123456;

    amqp_basic_properties_t props;
    memset(&props, 0, sizeof props);
    props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_HEADERS_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG |
                   AMQP_BASIC_CORRELATION_ID_FLAG | AMQP_BASIC_MESSAGE_ID_FLAG | AMQP_BASIC_TIMESTAMP_FLAG |
                   AMQP_BASIC_APP_ID_FLAG;
    props.content_type = amqp_cstring_bytes("text/plain");
    props.delivery_mode = 2;
    props.correlation_id = amqp_cstring_bytes("6f1c5d0e-4a44-4f57-9b0e-7d1b6c3a9e21");
    props.message_id = amqp_cstring_bytes("0b9f3c7e-5a1d-5e2f-8c3b-2d4e6f8a0b1c");
    props.timestamp = (uint64_t)time(NULL);
    props.app_id = amqp_cstring_bytes("mikkoo-relay/0.1.0");
    props.headers.num_entries = 4;
    props.headers.entries = headers;

    double started = now();
    amqp_connection_state_t conn = amqp_new_connection();
    amqp_socket_t *socket = amqp_tcp_socket_new(conn);
    if (!socket || amqp_socket_open(socket, host, port) != AMQP_STATUS_OK) {
        fprintf(stderr, "c_publisher: cannot connect to %s:%d\n", host, port);
        return 1;
    }
    die_on_error(amqp_login(conn, "/", 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, "guest", "guest"), "login");
    amqp_channel_open(conn, 1);
    die_on_error(amqp_get_rpc_reply(conn), "opening the channel");
    amqp_confirm_select(conn, 1);
    die_on_error(amqp_get_rpc_reply(conn), "confirm.select");

    uint64_t sent = 0, confirmed = 0;
    amqp_bytes_t message = {(size_t)body_bytes, body};
    for (long start = 0; start < count; start += window) {
        long size = count - start < window ? count - start : window;
        uint64_t previous = sent;
        for (long i = 0; i < size; i++) {
            if (amqp_basic_publish(conn, 1, amqp_cstring_bytes(exchange), amqp_cstring_bytes(routing_key),
                                   1, 0, &props, message) != AMQP_STATUS_OK) {
                fprintf(stderr, "c_publisher: publishing failed\n");
                return 1;
            }
            sent++;
        }
        confirmed = await_confirms(conn, confirmed, previous);  /* the window before this one */
    }
    confirmed = await_confirms(conn, confirmed, sent);
    double seconds = now() - started;
    amqp_channel_close(conn, 1, AMQP_REPLY_SUCCESS);
    amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
    amqp_destroy_connection(conn);
    printf("rate %.1f\n", count / seconds);
    return 0;
}
