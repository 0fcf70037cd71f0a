package tracing

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/rs/zerolog"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Config says whether and how a part traces.
type Config struct {
	// Flag is the part's --trace flag: on even when no OTEL_* variable asks.
	Flag bool
	// Service is service.name unless OTEL_SERVICE_NAME or
	// OTEL_RESOURCE_ATTRIBUTES name another ("pullsched-<part>").
	Service string
	// Getenv reads the OTEL_* switches (default: none set). The exporter,
	// sampler and batcher read the process environment themselves.
	Getenv func(string) string
	// Logger receives the exporter's errors. Default: none.
	Logger zerolog.Logger
}

// Wanted reports whether cfg and the environment turn tracing on:
// OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none turn it off whatever
// else is set; otherwise it is on with --trace, OTEL_TRACES_EXPORTER=otlp,
// or an OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT). Other exporters and OTLP over gRPC
// are errors that say what is supported.
func Wanted(cfg Config) (bool, error) {
	env := cfg.Getenv
	if env == nil {
		env = func(string) string { return "" }
	}
	if strings.EqualFold(strings.TrimSpace(env("OTEL_SDK_DISABLED")), "true") {
		return false, nil
	}
	on := cfg.Flag || env("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
	switch exp := strings.TrimSpace(env("OTEL_TRACES_EXPORTER")); exp {
	case "none":
		return false, nil
	case "otlp":
		on = true
	case "":
	default:
		return false, fmt.Errorf("tracing: OTEL_TRACES_EXPORTER=%q is not supported (otlp or none)", exp)
	}
	if !on {
		return false, nil
	}
	proto := env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		proto = env("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	if proto != "" && proto != "http/protobuf" {
		return false, fmt.Errorf("tracing: OTLP protocol %q is not supported: pullsched exports OTLP over HTTP (http/protobuf, port 4318)", proto)
	}
	return true, nil
}

// Setup turns tracing on when Wanted says so: spans go in batches to an
// OTLP/HTTP exporter configured by the OTEL_EXPORTER_OTLP_* variables
// (endpoint default http://localhost:4318), sampled as OTEL_TRACES_SAMPLER
// says (default: parent-based, always on). It returns the function that
// flushes the spans left, shuts the exporter down and turns tracing off;
// with tracing off it returns a function that does nothing.
func Setup(ctx context.Context, cfg Config) (shutdown func(context.Context) error, err error) {
	noop := func(context.Context) error { return nil }
	on, err := Wanted(cfg)
	if err != nil || !on {
		return noop, err
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return noop, fmt.Errorf("tracing: OTLP exporter: %w", err)
	}
	service := cfg.Service
	if service == "" {
		service = "pullsched"
	}
	// Later detectors win: the environment overrides the default name.
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", service)),
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithFromEnv(),
	)
	if err != nil && res == nil {
		_ = exp.Shutdown(ctx)
		return noop, fmt.Errorf("tracing: resource: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	log := cfg.Logger
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		log.Warn().Err(err).Msg("tracing: exporter error")
	}))
	restore := Use(tp)
	log.Info().Str("service", service).Msg("tracing on: OTLP/HTTP exporter")
	return func(ctx context.Context) error {
		restore()
		if err := tp.Shutdown(ctx); err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("tracing: shutdown: %w", err)
		}
		return nil
	}, nil
}
