/** Spanish. Loaded on demand: only pages with `lang="es"` download it. */
import type { ExtraStrings, UiStrings } from '../i18n.js';

export const strings: UiStrings & ExtraStrings = {
  title: 'Asistente de voz',
  open: 'Abrir el asistente de voz',
  close: 'Cerrar',
  talk: 'Hablar con el asistente',
  start: 'Empezar a hablar',
  stop: 'Dejar de hablar',
  mute: 'Silenciar el micrófono',
  unmute: 'Activar el micrófono',
  end: 'Terminar la conversación',
  clear: 'Borrar la conversación',
  inputLabel: 'Mensaje',
  inputPlaceholder: 'Escribe un mensaje…',
  send: 'Enviar',
  transcriptLabel: 'Conversación',
  you: 'Tú',
  bot: 'Asistente',
  interrupted: 'interrumpido',
  typing: 'Preparando la respuesta',
  idle: 'Pulsa el botón para hablar',
  idleText: 'Escribe un mensaje para empezar',
  connecting: 'Conectando…',
  listening: 'Escuchando',
  userSpeaking: 'Estás hablando',
  thinking: 'Pensando…',
  speaking: 'Hablando',
  replying: 'Respondiendo…',
  muted: 'Micrófono silenciado',
  stateError: 'Algo salió mal',
  toolRunning: 'Consultando…',
  preparingStt: 'Preparando el reconocimiento de voz… {percent} %',
  retry: 'Reintentar',
  typeInstead: 'Escribir en su lugar',
  dismiss: 'Cerrar aviso',
  errorCode: 'Código de error',
  micDeniedTitle: 'El micrófono está bloqueado',
  micDeniedHelp:
    'Para hablar, haz clic en el icono del candado o de la cámara en la barra de direcciones, permite el micrófono para este sitio y pulsa Reintentar. También puedes escribir tu pregunta.',
  micNotFound:
    'No se encontró ningún micrófono. Conecta uno y vuelve a intentarlo, o escribe tu pregunta.',
  micUnavailable:
    'Otra aplicación está usando el micrófono o no se pudo iniciar. Ciérrala y vuelve a intentarlo, o escribe tu pregunta.',
  unreachable:
    'No se puede contactar con el asistente en este momento. Inténtalo de nuevo más tarde.',
  notSetUp: 'Este asistente no está configurado para este sitio web.',
  notSetUpHelp:
    'Si el sitio es tuyo, comprueba que la clave de cliente del asistente permita la dirección de este sitio.',
  audioBlocked:
    'El navegador bloqueó el sonido. Pulsa de nuevo el botón de hablar para permitirlo.',
  audioUnsupported: 'Este navegador no permite usar la voz aquí. Puedes escribir tu pregunta.',
  assetsUnavailable:
    'La voz no funciona ahora en este sitio: no se pudieron cargar algunos de sus archivos. Puedes escribir tu pregunta.',
  assetsUnavailableHelp:
    'Si este sitio es tuyo, la consola del navegador y el código de error de abajo indican qué archivo falta.',
  sttUnavailable:
    'El reconocimiento de voz no funciona ahora en este navegador. Vuelve a intentarlo o escribe tu pregunta.',
  turnLost:
    'La conexión se cortó antes de que llegara la respuesta. Vuelve a preguntar, por favor.',
  upstream: 'El asistente tuvo un problema al responder. Inténtalo de nuevo en un momento.',
  tooLong: 'Es demasiado largo. Intenta acortarlo.',
  generic: 'Algo salió mal. Inténtalo de nuevo.',
  handoffTitle: 'Hablar con una persona',
  handoffText: 'Nuestro equipo puede ayudarte. Elige cómo contactar:',
  handoffNotified: 'Hemos avisado a nuestro equipo y se pondrá en contacto contigo.',
  handoffCall: 'Llamar al {phone}',
  handoffEmail: 'Escribir a {email}',
  handoffChat: 'Abrir el chat en vivo',
  handoffClose: 'Cerrar',
  feedbackUp: 'Respuesta útil',
  feedbackDown: 'Respuesta poco útil',
  feedbackComment: '¿Qué faltó? (opcional)',
  feedbackSend: 'Enviar',
  feedbackThanks: 'Gracias por tu opinión',
  newTab: '(se abre en una pestaña nueva)',
};
