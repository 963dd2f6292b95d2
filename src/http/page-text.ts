import type { PageMessage } from '../core/code-flow/steps.js';

/** The languages the browser pages speak; the first is the fallback. */
export const pageLanguages = ['en', 'de', 'fr'] as const;
export type PageLanguage = (typeof pageLanguages)[number];

type Translations = Readonly<Record<Exclude<PageLanguage, 'en'>, string>>;

/**
 * The pages' wording in German and French, by the English text (which is what the code and the
 * core's messages use). `{name}` marks a value filled in after translation. English text without
 * an entry here (an OAuth error description, say) is shown as it is.
 */
const catalogue: ReadonlyMap<string, Translations> = new Map<string, Translations>([
  ['Sign in', { de: 'Anmelden', fr: 'Connexion' }],
  [
    '{client} asks you to sign in.',
    { de: '{client} bittet Sie, sich anzumelden.', fr: '{client} vous demande de vous connecter.' },
  ],
  ['User name', { de: 'Benutzername', fr: 'Nom d’utilisateur' }],
  ['Password', { de: 'Passwort', fr: 'Mot de passe' }],
  ['Allow access', { de: 'Zugriff erlauben', fr: 'Autoriser l’accès' }],
  ['Allow access?', { de: 'Zugriff erlauben?', fr: 'Autoriser l’accès ?' }],
  ['Signed in as {user}.', { de: 'Angemeldet als {user}.', fr: 'Connecté en tant que {user}.' }],
  [
    '{client} ({clientId}) asks for access.',
    { de: '{client} ({clientId}) bittet um Zugriff.', fr: '{client} ({clientId}) demande l’accès.' },
  ],
  [
    'It wants to let the agent {agent} ({agentId}) act for you.',
    {
      de: 'Die Anwendung möchte den Agenten {agent} ({agentId}) in Ihrem Namen handeln lassen.',
      fr: 'Elle souhaite laisser l’agent {agent} ({agentId}) agir en votre nom.',
    },
  ],
  [
    'The name {client} comes from the application itself and is not verified by Baton.',
    {
      de: 'Der Name {client} stammt von der Anwendung selbst und ist von Baton nicht geprüft.',
      fr: 'Le nom {client} vient de l’application elle-même et n’est pas vérifié par Baton.',
    },
  ],
  ['{client} will act for you.', { de: '{client} wird in Ihrem Namen handeln.', fr: '{client} agira en votre nom.' }],
  ['It will be able to', { de: 'Erlaubt wird', fr: 'Elle pourra' }],
  ['use the permission {scope}', { de: 'die Berechtigung {scope} nutzen', fr: 'utiliser la permission {scope}' }],
  ['Allow', { de: 'Erlauben', fr: 'Autoriser' }],
  ['Deny', { de: 'Ablehnen', fr: 'Refuser' }],
  ['Cannot continue', { de: 'Vorgang nicht möglich', fr: 'Impossible de continuer' }],
  [
    'The application that sent you here is not registered for sign-in.',
    {
      de: 'Die Anwendung, die Sie hierher geschickt hat, ist nicht für die Anmeldung registriert.',
      fr: 'L’application qui vous a envoyé ici n’est pas enregistrée pour la connexion.',
    },
  ],
  [
    'The address to return to is not registered for this application.',
    {
      de: 'Die Rücksprungadresse ist für diese Anwendung nicht registriert.',
      fr: 'L’adresse de retour n’est pas enregistrée pour cette application.',
    },
  ],
  [
    'This form has expired or was not sent from this site. Start again from the application.',
    {
      de: 'Dieses Formular ist abgelaufen oder wurde nicht von dieser Seite gesendet. Beginnen Sie erneut in der Anwendung.',
      fr: 'Ce formulaire a expiré ou n’a pas été envoyé depuis ce site. Recommencez depuis l’application.',
    },
  ],
  [
    'This sign-in request has expired. Start again from the application.',
    {
      de: 'Diese Anmeldeanfrage ist abgelaufen. Beginnen Sie erneut in der Anwendung.',
      fr: 'Cette demande de connexion a expiré. Recommencez depuis l’application.',
    },
  ],
  [
    'This request has already been answered. Start again from the application.',
    {
      de: 'Diese Anfrage wurde bereits beantwortet. Beginnen Sie erneut in der Anwendung.',
      fr: 'Cette demande a déjà reçu une réponse. Recommencez depuis l’application.',
    },
  ],
  [
    'The user name or password is not right.',
    {
      de: 'Benutzername oder Passwort ist nicht richtig.',
      fr: 'Le nom d’utilisateur ou le mot de passe est incorrect.',
    },
  ],
  [
    'Too many failed sign-ins. Try again in {seconds} seconds.',
    {
      de: 'Zu viele fehlgeschlagene Anmeldungen. Versuchen Sie es in {seconds} Sekunden erneut.',
      fr: 'Trop d’échecs de connexion. Réessayez dans {seconds} secondes.',
    },
  ],
  [
    'The form could not be read.',
    { de: 'Das Formular konnte nicht gelesen werden.', fr: 'Le formulaire n’a pas pu être lu.' },
  ],
  ['Returning to the application', { de: 'Zurück zur Anwendung', fr: 'Retour à l’application' }],
  ['Continue', { de: 'Weiter', fr: 'Continuer' }],
  [
    'The service is unavailable right now. Try again in a moment.',
    {
      de: 'Der Dienst ist gerade nicht erreichbar. Versuchen Sie es gleich noch einmal.',
      fr: 'Le service est momentanément indisponible. Réessayez dans un instant.',
    },
  ],
]);

/** The language of a request's pages from what the browser asked for (see routes/browser.ts), English by default. */
export function pageLanguage(detected: string | undefined): PageLanguage {
  return pageLanguages.find((l) => l === detected) ?? 'en';
}

/**
 * A message in `language` as a list of text parts and values: each `{name}` becomes
 * `render(values[name], name)`, which lets the page mark a value up; the text parts are left for the
 * page's template to escape.
 */
export function translate<T>(
  language: PageLanguage,
  message: PageMessage,
  render: (value: string, name: string) => T,
): (string | T)[] {
  const wording = language === 'en' ? message.text : (catalogue.get(message.text)?.[language] ?? message.text);
  return wording
    .split(/(\{[A-Za-z]+\})/)
    .filter((part) => part !== '')
    .map((part) => {
      const name = /^\{([A-Za-z]+)\}$/.exec(part)?.[1];
      const value =
        name === undefined || message.values === undefined || !Object.hasOwn(message.values, name)
          ? undefined
          : message.values[name];
      return name === undefined || value === undefined ? part : render(value, name);
    });
}

/** A fixed piece of page wording in `language`. */
export function word(language: PageLanguage, text: string): string {
  return translate(language, { text }, (v) => v).join('');
}
