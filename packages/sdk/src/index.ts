export { BatonError, OAuthResponseError } from './errors.js';
