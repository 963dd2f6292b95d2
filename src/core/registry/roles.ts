/** Roles a built-in user may hold in the audit explorer (registry \`users[].roles\`). */
export const userRoles = ['auditor', 'operator'] as const;
export type UserRole = (typeof userRoles)[number];
