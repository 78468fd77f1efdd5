/* Datadog trace payloads: the three modules in one include.
 *
 *   dd_map.h            OTLP spans -> Datadog spans (the Agent's mapping)
 *   dd_agent_payload.h  AgentPayload packer and splitter (agentless intake)
 *   dd_encode.h         /v0.4/traces msgpack (agent mode), JSON lines (file)
 *
 * Include the one you need; this header is for code that uses them all. */
#ifndef SP_DD_PAYLOAD_H
#define SP_DD_PAYLOAD_H

#include "dd_agent_payload.h"
#include "dd_encode.h"
#include "dd_map.h"

#endif
