// Certificates for the HTTPS endpoints of the webhook and the controller: CA and leaf generation,
// rotation, the file, directory and Secret stores, and the webhook configuration's caBundle.

export { webhookIdentity, serviceDnsNames, type CertIdentity } from './certs.js';
export { staticTlsSource, type TlsSource, type TlsMaterial } from './tls.js';
export { createFileTlsSource } from './file-tls.js';
export { startManagedTls, type ManagedTls } from './managed-tls.js';
export { dirCertStore } from './dir-store.js';
export { secretCertStore } from './secret-store.js';
export { createCaBundlePatcher, DEFAULT_WEBHOOK_CONFIG_NAME } from './ca-bundle.js';
export { DEFAULT_ROTATION_POLICY, type RotationPolicy } from './rotation.js';
