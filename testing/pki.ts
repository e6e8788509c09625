/**
 * What the Vault provider returns for an issued certificate, offline: placeholders that say what they are,
 * and an expiry a fixed time after a fixed issue date, so that renders stay byte-identical.
 */

/** The resource type of `vault.pkisecret.SecretBackendCert`. */
export const VAULT_PKI_CERT_TYPE = "vault:pkiSecret/secretBackendCert:SecretBackendCert";
/** When every offline certificate was "issued" (2026-01-01T00:00:00Z). */
export const OFFLINE_ISSUED_AT = 1767225600;

/** The provider-computed state of an offline certificate, merged over its inputs. */
export function offlinePkiState(inputs: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const ttl = Number(inputs.ttl ?? 0);
  const cn = String(inputs.commonName);
  return {
    certificate: `(offline certificate for ${cn}, issued by Vault PKI at pulumi up)`,
    issuingCa: `(offline issuing CA of ${String(inputs.backend)}/${String(inputs.name)})`,
    caChain: `(offline CA chain of ${String(inputs.backend)})`,
    privateKey: "(offline private key)",
    privateKeyType: "rsa",
    serialNumber: "00:00:00:00",
    expiration: OFFLINE_ISSUED_AT + ttl,
    renewPending: false,
  };
}

/** The mock state of any resource: its inputs, plus what the provider computes for the types that need it. */
export function offlineState(
  type: string,
  inputs: Readonly<Record<string, unknown>>,
): Record<string, unknown> {
  return type === VAULT_PKI_CERT_TYPE ? { ...inputs, ...offlinePkiState(inputs) } : { ...inputs };
}
