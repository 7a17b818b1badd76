/*
 * test_record.c: the record a probe reports, filled from hand-made requests.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <apr_general.h>
#include <apr_tables.h>

#include "usdt_record.h"

static apr_pool_t *pool;

/* One client request, its connection and its server, as Apache has them
 * after reading "GET /a?b=1 HTTP/1.1" from 127.0.0.1:40000 on port 8080. */
typedef struct {
	request_rec r;
	conn_rec c;
	server_rec s;
	apr_sockaddr_t local, remote;
} fake_request;

static void fake_init(fake_request *f)
{
	memset(f, 0, sizeof(*f));
	f->local.port = 8080;
	f->remote.port = 40000;
	f->c.local_ip = "127.0.0.1";
	f->c.client_ip = "127.0.0.1";
	f->c.local_addr = &f->local;
	f->c.client_addr = &f->remote;
	f->s.server_hostname = "www.example.test";
	f->r.connection = &f->c;
	f->r.server = &f->s;
	f->r.headers_in = apr_table_make(pool, 4);
	f->r.method = "GET";
	f->r.unparsed_uri = "/a?b=1";
	f->r.protocol = "HTTP/1.1";
	f->r.hostname = "www.example.test";
	f->r.request_time = 1000000;
	f->r.bytes_sent = 123;
	f->r.sent_bodyct = 1;
	f->r.read_length = 7;
	apr_table_setn(f->r.headers_in, "User-Agent", "curl/7.88.1");
}

static int setup(void **state)
{
	(void)state;
	apr_initialize();
	return apr_pool_create(&pool, NULL) == APR_SUCCESS ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	apr_pool_destroy(pool);
	apr_terminate();
	return 0;
}

static void test_fills_every_field(void **state)
{
	static const char empty[] = "";
	fake_request f;
	dthttpd_t rec;
	size_t i;
	(void)state;

	fake_init(&f);
	memset(&rec, 0xa5, sizeof(rec));
	usdt_record_fill(&rec, &f.r, 42, 200, 1000250, empty);
	assert_int_equal(rec.id, 42);
	assert_int_equal(rec.status, 200);
	assert_int_equal(rec.elapsed_us, 250);
	assert_int_equal(rec.bytes_sent, 123);
	assert_int_equal(rec.bytes_received, 7);
	assert_int_equal(rec.lport, 8080);
	assert_int_equal(rec.rport, 40000);
	assert_int_equal(rec.ipversion, 4);
	assert_string_equal(rec.laddr, "127.0.0.1");
	assert_string_equal(rec.raddr, "127.0.0.1");
	assert_string_equal(rec.method, "GET");
	assert_string_equal(rec.uri, "/a?b=1");
	assert_string_equal(rec.agent, "curl/7.88.1");
	assert_string_equal(rec.protocol, "HTTP/1.1");
	assert_string_equal(rec.host, "www.example.test");
	assert_string_equal(rec.vhost, "www.example.test");
	/* What the request says of the new fields; the module's state fills
	 * conn_id, conn_request, the timeline, handler and TLS, 0 or "" here. */
	assert_int_equal(rec.conn_id, 0);
	assert_int_equal(rec.conn_request, 0);
	assert_int_equal(rec.flags, 0);
	assert_int_equal(rec.handler_us, 0);
	assert_int_equal(rec.first_byte_us, 0);
	assert_int_equal(rec.last_byte_us, 0);
	assert_ptr_equal(rec.handler, empty);
	assert_ptr_equal(rec.filename, empty);
	assert_ptr_equal(rec.user, empty);
	assert_ptr_equal(rec.content_type, empty);
	assert_ptr_equal(rec.tls_protocol, empty);
	assert_int_equal(rec.fixed_reserved32, 0);
	/* The reserve must read zero, so that a consumer written for a later
	 * layout sees "absent" rather than garbage. */
	assert_int_equal(rec.ptr_size, sizeof(void *));
	for (i = 0; i < sizeof(rec.fixed_reserved) / sizeof(rec.fixed_reserved[0]); i++)
		assert_int_equal(rec.fixed_reserved[i], 0);
	for (i = 0; i < sizeof(rec.ptr_reserved) / sizeof(rec.ptr_reserved[0]); i++)
		assert_null(rec.ptr_reserved[i]);
}

static void test_absent_strings_are_empty_not_null(void **state)
{
	static const char empty[] = "";
	fake_request f;
	dthttpd_t rec;
	(void)state;

	/* What a request rejected while being read looks like: no method, no
	 * URI, no protocol, no Host, no User-Agent. */
	fake_init(&f);
	f.r.method = NULL;
	f.r.unparsed_uri = NULL;
	f.r.protocol = NULL;
	f.r.hostname = NULL;
	f.s.server_hostname = NULL;
	apr_table_clear(f.r.headers_in);
	usdt_record_fill(&rec, &f.r, 1, 400, 1000000, empty);
	assert_ptr_equal(rec.method, empty);
	assert_ptr_equal(rec.uri, empty);
	assert_ptr_equal(rec.protocol, empty);
	assert_ptr_equal(rec.host, empty);
	assert_ptr_equal(rec.vhost, empty);
	assert_ptr_equal(rec.agent, empty);
	assert_int_equal(rec.status, 400);
}

static void test_internal_redirect_reports_client_uri_and_final_request(void **state)
{
	static const char empty[] = "";
	fake_request f;
	request_rec final;
	server_rec other;
	dthttpd_t rec;
	(void)state;

	/* ErrorDocument 404 /errors/404.html: the client asked for /missing,
	 * the response came from the redirected request. */
	fake_init(&f);
	f.r.unparsed_uri = "/missing";
	f.r.status = 404;
	final = f.r;
	final.unparsed_uri = "/errors/404.html";
	final.prev = &f.r;
	final.bytes_sent = 999;
	final.sent_bodyct = 1;
	memset(&other, 0, sizeof(other));
	other.server_hostname = "errors.example.test";
	final.server = &other;
	f.r.next = &final;

	assert_ptr_equal(usdt_client_request(&final), &f.r);
	assert_ptr_equal(usdt_final_request(&f.r), &final);
	usdt_record_fill(&rec, &f.r, 7, 404, 1000000, empty);
	assert_string_equal(rec.uri, "/missing");
	assert_int_equal(rec.bytes_sent, 999);
	assert_string_equal(rec.vhost, "errors.example.test");
	/* The same from the other end of the chain. */
	usdt_record_fill(&rec, &final, 7, 404, 1000000, empty);
	assert_string_equal(rec.uri, "/missing");
}

static void test_no_body_sent_counts_zero_bytes(void **state)
{
	static const char empty[] = "";
	fake_request f;
	dthttpd_t rec;
	(void)state;

	/* HEAD: the content handler set bytes_sent to the file's size, but
	 * no body went out; %B logs 0 and so must the record. */
	fake_init(&f);
	f.r.method = "HEAD";
	f.r.sent_bodyct = 0;
	usdt_record_fill(&rec, &f.r, 1, 200, 1000000, empty);
	assert_int_equal(rec.bytes_sent, 0);
}

static void test_useragent_address_wins_over_connection(void **state)
{
	static const char empty[] = "";
	fake_request f;
	apr_sockaddr_t ua;
	dthttpd_t rec;
	(void)state;

	/* mod_remoteip sets useragent_ip/addr; %a reports them. */
	fake_init(&f);
	memset(&ua, 0, sizeof(ua));
	ua.port = 5555;
	f.r.useragent_ip = "2001:db8::7";
	f.r.useragent_addr = &ua;
	usdt_record_fill(&rec, &f.r, 1, 0, 1000000, empty);
	assert_string_equal(rec.raddr, "2001:db8::7");
	assert_int_equal(rec.rport, 5555);
	assert_int_equal(rec.ipversion, 6);
	assert_string_equal(rec.laddr, "127.0.0.1");
}

static void test_ip_version_from_text(void **state)
{
	(void)state;
	assert_int_equal(usdt_ip_version("127.0.0.1"), 4);
	assert_int_equal(usdt_ip_version("::1"), 6);
	assert_int_equal(usdt_ip_version("fe80::1%eth0"), 6);
	assert_int_equal(usdt_ip_version(""), 4);
	assert_int_equal(usdt_ip_version(NULL), 4);
}

static void test_elapsed_never_negative(void **state)
{
	(void)state;
	assert_int_equal(usdt_elapsed_us(1000, 1500), 500);
	assert_int_equal(usdt_elapsed_us(1000, 1000), 0);
	/* The wall clock stepped back between reading and logging. */
	assert_int_equal(usdt_elapsed_us(2000, 1000), 0);
}

static void test_flags_status_first_and_final_request_fields(void **state)
{
	static const char empty[] = "";
	fake_request f;
	request_rec final;
	dthttpd_t rec;
	(void)state;

	/* /gone rewritten to a missing page: 200 first, 404 in the end; kept
	 * alive; the client went away before the end. */
	fake_init(&f);
	f.r.status = 200;
	f.c.keepalive = AP_CONN_KEEPALIVE;
	f.c.aborted = 1;
	final = f.r;
	final.prev = &f.r;
	final.status = 404;
	final.filename = "/srv/htdocs/errors/404.html";
	final.user = "alice";
	final.content_type = "text/html";
	f.r.next = &final;
	usdt_record_fill(&rec, &f.r, 3, 404, 1000000, empty);
	assert_int_equal(rec.status_first, 200);
	assert_int_equal(rec.flags, DTHTTPD_F_ABORTED | DTHTTPD_F_KEEPALIVE | DTHTTPD_F_REDIRECT);
	assert_string_equal(rec.filename, "/srv/htdocs/errors/404.html");
	assert_string_equal(rec.user, "alice");
	assert_string_equal(rec.content_type, "text/html");
}

static void test_handler_name_as_ap_invoke_handler(void **state)
{
	fake_request f;
	(void)state;

	fake_init(&f);
	f.r.handler = "server-status";
	assert_string_equal(usdt_handler_name(&f.r, pool), "server-status");
	/* no handler: a content type the server set (a backend's or a CGI's
	 * is not trusted), without parameters */
	f.r.handler = NULL;
	f.r.content_type = "text/html; charset=UTF-8";
	assert_string_equal(usdt_handler_name(&f.r, pool), "default-handler");
	AP_REQUEST_SET_BNOTE(&f.r, AP_REQUEST_TRUSTED_CT, AP_REQUEST_TRUSTED_CT);
	assert_string_equal(usdt_handler_name(&f.r, pool), "text/html");
	f.r.content_type = "text/plain";
	assert_string_equal(usdt_handler_name(&f.r, pool), "text/plain");
	/* no type at all */
	f.r.content_type = NULL;
	assert_string_equal(usdt_handler_name(&f.r, pool), "default-handler");
}

static void test_timeline_marks(void **state)
{
	(void)state;
	assert_int_equal(usdt_mark_us(1000, 0), 0);       /* not reached */
	assert_int_equal(usdt_mark_us(1000, 1250), 250);
	/* reached in the very microsecond the request began: still reached */
	assert_int_equal(usdt_mark_us(1000, 1000), 1);
	assert_int_equal(usdt_mark_us(1000, 900), 1);
}

static void test_conn_record(void **state)
{
	static const char empty[] = "";
	fake_request f;
	dthttpd_conn_t rec;
	size_t i;
	(void)state;

	fake_init(&f);
	memset(&rec, 0xa5, sizeof(rec));
	usdt_conn_record_fill(&rec, &f.c, 9, 1234, 3, empty);
	assert_int_equal(rec.conn_id, 9);
	assert_int_equal(rec.elapsed_us, 1234);
	assert_int_equal(rec.requests, 3);
	assert_int_equal(rec.lport, 8080);
	assert_int_equal(rec.rport, 40000);
	assert_int_equal(rec.ipversion, 4);
	assert_int_equal(rec.ptr_size, sizeof(void *));
	assert_int_equal(rec.flags, 0);
	assert_string_equal(rec.laddr, "127.0.0.1");
	assert_string_equal(rec.raddr, "127.0.0.1");
	assert_ptr_equal(rec.tls_protocol, empty);
	assert_ptr_equal(rec.tls_cipher, empty);
	assert_ptr_equal(rec.sni, empty);
	for (i = 0; i < sizeof(rec.fixed_reserved) / sizeof(rec.fixed_reserved[0]); i++)
		assert_int_equal(rec.fixed_reserved[i], 0);
	for (i = 0; i < sizeof(rec.ptr_reserved) / sizeof(rec.ptr_reserved[0]); i++)
		assert_null(rec.ptr_reserved[i]);
	f.c.aborted = 1;
	f.c.client_ip = NULL;
	usdt_conn_record_fill(&rec, &f.c, 9, 0, 0, empty);
	assert_int_equal(rec.flags, DTHTTPD_F_ABORTED);
	assert_ptr_equal(rec.raddr, empty);
}

static void test_proxy_record(void **state)
{
	static const char empty[] = "";
	fake_request f;
	dthttpd_proxy_t rec;
	(void)state;

	fake_init(&f);
	memset(&rec, 0xa5, sizeof(rec));
	usdt_proxy_record_fill(&rec, &f.r, 5, 503, DTHTTPD_PX_F_PROXY_ERROR, 777,
	                       "http://b:8080/", NULL, "http://b:8080/x", empty);
	assert_int_equal(rec.id, 5);
	assert_int_equal(rec.status, 503);
	assert_int_equal(rec.backend_us, 777);
	assert_int_equal(rec.ptr_size, sizeof(void *));
	assert_int_equal(rec.ipversion, 4);
	assert_string_equal(rec.backend, "http://b:8080/");
	assert_ptr_equal(rec.balancer, empty);
	assert_string_equal(rec.url, "http://b:8080/x");
	assert_string_equal(rec.raddr, "127.0.0.1");
	assert_string_equal(rec.laddr, "127.0.0.1");
	assert_int_equal(rec.flags, DTHTTPD_PX_F_PROXY_ERROR);
	assert_int_equal(rec.fixed_reserved[0], 0);
	assert_null(rec.ptr_reserved[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fills_every_field),
		cmocka_unit_test(test_absent_strings_are_empty_not_null),
		cmocka_unit_test(test_internal_redirect_reports_client_uri_and_final_request),
		cmocka_unit_test(test_no_body_sent_counts_zero_bytes),
		cmocka_unit_test(test_useragent_address_wins_over_connection),
		cmocka_unit_test(test_ip_version_from_text),
		cmocka_unit_test(test_elapsed_never_negative),
		cmocka_unit_test(test_flags_status_first_and_final_request_fields),
		cmocka_unit_test(test_handler_name_as_ap_invoke_handler),
		cmocka_unit_test(test_timeline_marks),
		cmocka_unit_test(test_conn_record),
		cmocka_unit_test(test_proxy_record),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
