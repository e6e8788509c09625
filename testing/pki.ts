/**
 * What the Vault provider returns for an issued certificate, offline: placeholders that say what they are,
 * and an expiry a fixed time after a fixed issue date, so that renders stay byte-identical.
 */

/** The resource type of `vault.pkisecret.SecretBackendCert`. */
export const VAULT_PKI_CERT_TYPE = "vault:pkiSecret/secretBackendCert:SecretBackendCert";
/** When every offline certificate was "issued" (2026-01-01T00:00:00Z). */
export const OFFLINE_ISSUED_AT = 1767225600;

/**
 * The provider-computed state of an offline certificate, merged over its inputs. `renewals`: how many times
 * a `pulumi up --refresh` has re-issued it (`autoRenew`, once less than `minSecondsRemaining` remained):
 * each is a new certificate and key from the same CA, issued that much later. 0, the first issue, is what
 * every render shows.
 */
export function offlinePkiState(
  inputs: Readonly<Record<string, unknown>>,
  renewals = 0,
): Record<string, unknown> {
  const ttl = Number(inputs.ttl ?? 0);
  const cn = String(inputs.commonName);
  const issuedAt = OFFLINE_ISSUED_AT + renewals * (ttl - Number(inputs.minSecondsRemaining ?? 0));
  const which = renewals === 0 ? "" : `, renewal ${renewals}`;
  return {
    certificate: `(offline certificate for ${cn}, issued by Vault PKI at pulumi up${which})`,
    issuingCa: `(offline issuing CA of ${String(inputs.backend)}/${String(inputs.name)})`,
    caChain: `(offline CA chain of ${String(inputs.backend)})`,
    privateKey: `(offline private key${which})`,
    privateKeyType: "rsa",
    serialNumber: `00:00:00:${renewals.toString(16).padStart(2, "0")}`,
    expiration: issuedAt + ttl,
    renewPending: false,
  };
}

/**
 * The mock state of any resource: its inputs, plus what the provider computes for the types that need it
 * (`renewals` as for {@link offlinePkiState}).
 */
export function offlineState(
  type: string,
  inputs: Readonly<Record<string, unknown>>,
  renewals = 0,
): Record<string, unknown> {
  return type === VAULT_PKI_CERT_TYPE ? { ...inputs, ...offlinePkiState(inputs, renewals) } : { ...inputs };
}
